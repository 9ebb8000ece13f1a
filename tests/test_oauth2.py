"""OAuth2 logins end to end, offline: a local Authlib authorization server issues and refreshes the
tokens, Dovecot's oauth2 passdb checks them by introspection, the SMTP server takes them too.

Bring-your-own tokens, a token expiring mid-life (refreshed, the sync goes on, the rotated refresh
token stored), a revoked one (OAUTH2_REAUTH_REQUIRED, one server.auth_failed), OAUTHBEARER and XOAUTH2,
the validation rules, the keep-alive of idle accounts, and that no token leaks anywhere. The hosted
flow in a browser is tests/test_oauth2_browser.py.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import pytest

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.models import ImapServer, utcnow
from imap2api.oauth2 import tokens
from imap2api.sync.connection import ImapAccount, open_connection
from imap2api.validation import validate_server
from imap2api.workers.oauth2 import keepalive_tick, refresh_oauth2_token
from tests.conftest import OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET, Mirror
from tests.support.dovecot import DovecotServer
from tests.support.messages import make_message
from tests.support.oauth2_server import OAuth2Server
from tests.support.smtp import SmtpServer
from tests.test_admin import Admin

SERVERS = "/api/imap-servers/"


@pytest.fixture(autouse=True)
def google_is_the_local_server(oauth2_server: OAuth2Server) -> Any:
    """The service's Google client and URLs point at the local authorization server."""
    names = ("client_id", "client_secret", "token_url", "authorize_url")
    saved = {name: getattr(settings, f"oauth2_google_{name}") for name in names}
    settings.oauth2_google_client_id = OAUTH2_CLIENT_ID
    settings.oauth2_google_client_secret = OAUTH2_CLIENT_SECRET
    settings.oauth2_google_token_url = oauth2_server.token_url
    settings.oauth2_google_authorize_url = oauth2_server.authorize_url
    yield
    for name, value in saved.items():
        setattr(settings, f"oauth2_google_{name}", value)


def oauth2_fields(dovecot: DovecotServer, user: str, **extra: Any) -> dict[str, Any]:
    """Settings of an oauth2 (google) server on the OAuth2 Dovecot, over STARTTLS."""
    return {
        "name": f"oauth2 mailbox of {user}",
        "host": dovecot.host,
        "port": dovecot.port,
        "use_ssl": False,
        "username": user,
        "auth_type": "oauth2",
        "oauth2_provider": "google",
        **extra,
    }


def new_mirror(make_user, dovecot: DovecotServer, **extra: Any) -> Mirror:
    """A fresh mailbox on the OAuth2 Dovecot and an oauth2 server mirroring it (tokens as given)."""
    username, _, token = make_user()
    user = dovecot.add_user()
    data = validate_server(oauth2_fields(dovecot, user, **extra))
    with session_scope() as session:
        owner = crud_users.get_user_by_username(session, username=username)
        server = crud_servers.create_server(session, owner_id=owner.id, data=data)
        owner_id, server_id = owner.id, server.id
    return Mirror(dovecot, user, owner_id, token, server_id)


def stored(server_id: int) -> ImapServer:
    """The server row as stored now."""
    with session_scope() as session:
        server = session.get(ImapServer, server_id)
        assert server is not None
        session.expunge(server)
        return server


@pytest.fixture()
def byo(database: str, make_user, oauth2_dovecot: DovecotServer, oauth2_server: OAuth2Server) -> Mirror:
    """A mailbox with one message, connected with a refresh token the caller's own app obtained."""
    mirror = new_mirror(make_user, oauth2_dovecot)
    issued = oauth2_server.issue_tokens(mirror.mail_user, OAUTH2_CLIENT_ID)
    mirror.configure(oauth2_refresh_token=issued["refresh_token"])
    mirror.deliver(make_message(subject="Hello over OAuth2"))
    return mirror


def test_bring_your_own_refresh_token_syncs_refreshing_first(
    byo: Mirror, oauth2_server: OAuth2Server
) -> None:
    run = byo.sync()
    assert (run.status, run.error_code) == ("success", ""), run.error
    assert [email.subject for email in byo.emails()] == ["Hello over OAuth2"]
    # No access token was given: the first login refreshed, and the rotated refresh token was kept.
    assert oauth2_server.refresh_count == 1
    server = stored(byo.server_id)
    assert server.oauth2_token_stored and not server.needs_reauth
    assert server.oauth2_expires_at is not None and server.oauth2_expires_at > utcnow()
    again = byo.sync()
    assert again.status == "success" and oauth2_server.refresh_count == 1  # fresh: no second refresh


def test_a_given_access_token_is_used_until_it_expires_mid_life(
    client, make_user, oauth2_dovecot: DovecotServer, oauth2_server: OAuth2Server
) -> None:
    mirror = new_mirror(make_user, oauth2_dovecot)
    issued = oauth2_server.issue_tokens(mirror.mail_user, OAUTH2_CLIENT_ID)
    expires_at = utcnow() + timedelta(hours=1)
    given = {
        "oauth2_refresh_token": issued["refresh_token"],
        "oauth2_access_token": issued["access_token"],
        "oauth2_expires_at": expires_at.isoformat().replace("+00:00", "Z"),
    }
    answer = client.patch(f"{SERVERS}{mirror.server_id}/", json=given, headers=mirror.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["oauth2_token_stored"] is True
    assert abs((stored(mirror.server_id).oauth2_expires_at - expires_at).total_seconds()) < 1  # type: ignore[operator]
    assert mirror.sync().status == "success" and oauth2_server.refresh_count == 0
    # The provider ends the token early (as Google does on a password change of another session):
    # the login is refused, the token refreshed once, the sync goes on.
    oauth2_server.expire_access_tokens(mirror.mail_user)
    mirror.deliver(make_message(subject="after expiry"))
    run = mirror.sync()
    assert (run.status, run.messages_new) == ("success", 1), run.error
    assert oauth2_server.refresh_count == 1
    # Rotation is strict here: a second refresh works only with the refresh token stored after the first.
    oauth2_server.expire_access_tokens(mirror.mail_user)
    assert mirror.sync().status == "success" and oauth2_server.refresh_count == 2


def test_a_token_near_its_expiry_is_refreshed_before_login(byo: Mirror, oauth2_server: OAuth2Server) -> None:
    oauth2_server.set_access_token_lifetime(60)  # under the 300 s margin: every use refreshes first
    assert byo.sync().status == "success"
    assert byo.sync().status == "success"
    assert oauth2_server.refresh_count == 2 and oauth2_server.refresh_attempts == 2


def test_a_revoked_grant_needs_reauth_fires_one_event_and_stops_asking(
    client, byo: Mirror, oauth2_server: OAuth2Server
) -> None:
    assert byo.sync().status == "success"
    oauth2_server.revoke(byo.mail_user)
    oauth2_server.expire_access_tokens(byo.mail_user)
    run = byo.sync()
    assert (run.status, run.error_code) == ("error", "OAUTH2_REAUTH_REQUIRED")
    assert (
        "invalid_grant" in run.error
        and f"/api/oauth2/google/authorize/?imap_server={byo.server_id}" in run.error
    )
    answer = client.get(f"{SERVERS}{byo.server_id}/", headers=byo.headers).json()
    assert answer["needs_reauth"] is True and answer["last_error"] == run.error
    attempts = oauth2_server.refresh_attempts
    # Again: the same failure at once, without asking the provider, and no second event.
    again = byo.sync()
    assert again.error_code == "OAUTH2_REAUTH_REQUIRED" and oauth2_server.refresh_attempts == attempts
    (event,) = byo.events("server.auth_failed")
    assert event["imap_server"] == byo.server_id and event["error_code"] == "OAUTH2_REAUTH_REQUIRED"
    assert event["oauth2_provider"] == "google" and "connected again" in event["error"]
    # Nor does the scheduler keep trying: the server is not due while it needs reauth.
    with session_scope() as session:
        server = session.get(ImapServer, byo.server_id)
        assert server is not None
        server.next_sync_at = utcnow() - timedelta(minutes=1)
        session.add(server)
    with session_scope() as session:
        assert byo.server_id not in crud_runs.claim_due_servers(session, default_interval=300)
    # New tokens from the owner's app: usable again at once.
    issued = oauth2_server.issue_tokens(byo.mail_user, OAUTH2_CLIENT_ID)
    changed = client.patch(
        f"{SERVERS}{byo.server_id}/",
        json={"oauth2_refresh_token": issued["refresh_token"]},
        headers=byo.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["needs_reauth"] is False
    assert byo.sync().status == "success"


def test_a_server_without_tokens_says_how_to_connect_it(
    database: str, make_user, oauth2_dovecot: DovecotServer
) -> None:
    mirror = new_mirror(make_user, oauth2_dovecot)
    run = mirror.sync()
    assert run.error_code == "OAUTH2_NOT_CONNECTED"
    assert "GET /api/oauth2/google/authorize/" in run.error and "oauth2_refresh_token" in run.error
    assert mirror.events("server.auth_failed") == []


@pytest.fixture(scope="module")
def xoauth2_dovecot(oauth2_dovecot: DovecotServer, oauth2_provider_server: OAuth2Server) -> Any:
    """A Dovecot offering XOAUTH2 alone, as Outlook does (its certificate trusted beside the others)."""
    client_id, secret = oauth2_provider_server.introspection_credentials
    url = oauth2_provider_server.introspection_url.replace("http://", f"http://{client_id}:{secret}@", 1)
    with DovecotServer(tls=False, oauth2_introspection_url=url, oauth2_mechanisms="xoauth2") as server:
        yield server


def _login_methods(dovecot: DovecotServer, user: str) -> list[str]:
    """The SASL mechanisms Dovecot logged successful logins of ``user`` with."""
    lines = dovecot.log_path.read_text(errors="replace").splitlines()
    return [
        line.split("method=")[1].split(",")[0]
        for line in lines
        if "Login: user=<" + user + ">" in line and "method=" in line
    ]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_oauthbearer_where_offered_else_xoauth2(
    database: str,
    make_user,
    oauth2_dovecot: DovecotServer,
    xoauth2_dovecot: DovecotServer,
    oauth2_server: OAuth2Server,
) -> None:
    for dovecot, expected in ((oauth2_dovecot, "OAUTHBEARER"), (xoauth2_dovecot, "XOAUTH2")):
        user = dovecot.add_user()
        issued = oauth2_server.issue_tokens(user, OAUTH2_CLIENT_ID)
        tls = "starttls" if dovecot.tls else "none"
        account = ImapAccount(
            dovecot.host,
            dovecot.port,
            user,
            "",
            tls_mode=tls,
            bearer=lambda _rejected, token=issued["access_token"]: token,
        )
        client = open_connection(account)
        try:
            assert client.list_folders()  # logged in: an authenticated-state command works
        finally:
            client.logout()
        assert _login_methods(dovecot, user) == [expected]


def test_a_refused_token_with_nothing_better_is_an_auth_failure(
    database: str, oauth2_dovecot: DovecotServer, oauth2_server: OAuth2Server
) -> None:
    user = oauth2_dovecot.add_user()
    other = oauth2_server.issue_tokens(oauth2_dovecot.add_user(), OAUTH2_CLIENT_ID)["access_token"]
    asked: list[str] = []

    def bearer(rejected: str) -> str:
        asked.append(rejected)
        return other  # another user's token, every time

    account = ImapAccount(
        oauth2_dovecot.host, oauth2_dovecot.port, user, "", tls_mode="starttls", bearer=bearer
    )
    with pytest.raises(Exception) as failure:
        open_connection(account)
    assert getattr(failure.value, "code", None) == "IMAP_AUTH_FAILED"
    assert other not in str(failure.value)
    assert asked == ["", other]  # one retry with a fresh token, then the refusal stands


def test_concurrent_logins_refresh_once(byo: Mirror, oauth2_server: OAuth2Server) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def login() -> None:
        try:
            results.append(tokens.access_token(byo.server_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=login) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # One refresh (a second one would have used the rotated-away refresh token: invalid_grant).
    assert len(set(results)) == 1 and oauth2_server.refresh_attempts == 1


def test_idle_accounts_are_refreshed_by_the_keepalive(byo: Mirror, oauth2_server: OAuth2Server) -> None:
    assert byo.sync().status == "success"
    with session_scope() as session:
        server = session.get(ImapServer, byo.server_id)
        assert server is not None
        server.oauth2_refreshed_at = utcnow() - timedelta(days=settings.oauth2_keepalive_days + 1)
        server.is_active = False  # inactive servers keep their tokens alive too
        session.add(server)
    due = keepalive_tick()
    assert byo.server_id in due
    before = utcnow() - timedelta(days=settings.oauth2_keepalive_days)
    refresh_oauth2_token(byo.server_id, before.isoformat())
    assert oauth2_server.refresh_count == 2
    assert byo.server_id not in keepalive_tick()
    refresh_oauth2_token(byo.server_id, before.isoformat())  # a duplicate job: nothing to do
    assert oauth2_server.refresh_count == 2


def test_smtp_logs_in_with_the_token(
    client, byo: Mirror, oauth2_smtp_server: SmtpServer, oauth2_server: OAuth2Server
) -> None:
    issued = oauth2_server.issue_tokens(byo.mail_user, OAUTH2_CLIENT_ID)
    byo.configure(
        oauth2_refresh_token=issued["refresh_token"],
        smtp_host=oauth2_smtp_server.host,
        smtp_port=oauth2_smtp_server.port,
        smtp_security="starttls",
        email_address="ann@example.test",
        save_sent=False,
    )
    answer = client.post(
        "/api/emails/send/",
        json={
            "imap_server": byo.server_id,
            "to": ["bob@example.test"],
            "subject": "via OAuth2",
            "text": "hi",
        },
        headers=byo.headers,
    )
    assert answer.status_code == 202, answer.text
    (received,) = oauth2_smtp_server.wait_for(1)
    assert received.login == byo.mail_user
    assert oauth2_smtp_server.auth_attempts == [byo.mail_user]


# -- the rules ---------------------------------------------------------------------------------


def test_creating_a_google_server_fills_the_presets_and_needs_no_password(client, auth) -> None:
    answer = client.post(
        SERVERS,
        json={
            "name": "Gmail",
            "username": "ann@gmail.com",
            "auth_type": "oauth2",
            "oauth2_provider": "google",
        },
        headers=auth,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["host"], body["port"], body["use_ssl"]) == ("imap.gmail.com", 993, True)
    assert (body["smtp_host"], body["save_sent"]) == ("smtp.gmail.com", False)
    assert body["auth_type"] == "oauth2" and body["oauth2_provider"] == "google"
    assert body["oauth2_token_stored"] is False and body["needs_reauth"] is False
    assert not any(
        "token" in name and name != "oauth2_token_stored" and name != "oauth2_token_url" for name in body
    )
    # A Gmail host alone says the provider.
    by_host = client.post(
        SERVERS,
        json={"name": "G", "host": "imap.gmail.com", "username": "bo@gmail.com", "auth_type": "oauth2"},
        headers=auth,
    )
    assert by_host.status_code == 201 and by_host.json()["oauth2_provider"] == "google"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"auth_type": "oauth2", "host": "imap.example.com"}, {"oauth2_provider"}),
        (
            {"auth_type": "oauth2", "host": "imap.example.com", "oauth2_provider": "custom"},
            {"oauth2_token_url", "oauth2_client_id"},
        ),
        (
            {
                "auth_type": "oauth2",
                "host": "imap.example.com",
                "oauth2_provider": "custom",
                "oauth2_client_id": "x",
                "oauth2_token_url": "http://idp.example.com/token",
            },
            {"oauth2_token_url"},
        ),
        (
            {"auth_type": "oauth2", "oauth2_provider": "google", "oauth2_token_url": "https://x.example/t"},
            {"oauth2_token_url"},
        ),
        (
            {
                "auth_type": "password",
                "host": "imap.example.com",
                "password": "pw",
                "oauth2_refresh_token": "r",
            },
            {"oauth2_refresh_token"},
        ),
        (
            {"auth_type": "oauth2", "oauth2_provider": "google", "oauth2_expires_at": "2030-01-01T00:00:00Z"},
            {"oauth2_expires_at"},
        ),
        (
            {"auth_type": "oauth2", "oauth2_provider": "google", "oauth2_refresh_token": "a\nb"},
            {"oauth2_refresh_token"},
        ),
        ({"auth_type": "kerberos", "host": "imap.example.com", "password": "pw"}, {"auth_type"}),
        ({"host": "imap.example.com"}, {"password"}),
    ],
)
def test_oauth2_settings_are_checked(client, auth, fields: dict[str, Any], errors: set[str]) -> None:
    answer = client.post(SERVERS, json={"name": "n", "username": "u@example.com", **fields}, headers=auth)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == errors, answer.json()


def test_stored_tokens_never_follow_a_new_destination(client, byo: Mirror) -> None:
    url = f"{SERVERS}{byo.server_id}/"
    moved = client.patch(url, json={"host": "imap.attacker.example"}, headers=byo.headers)
    assert moved.status_code == 400 and set(moved.json()) == {"oauth2_refresh_token"}
    assert client.patch(url, json={"port": 1993}, headers=byo.headers).status_code == 400
    # Dropping the tokens with the move is allowed: the account must be connected again.
    dropped = client.patch(
        url, json={"host": "imap2.example.com", "oauth2_refresh_token": ""}, headers=byo.headers
    )
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["oauth2_token_stored"] is False
    assert stored(byo.server_id).oauth2_refresh_token_encrypted == ""
    # Back to a password: one must be given (none was ever stored).
    back = client.patch(url, json={"auth_type": "password"}, headers=byo.headers)
    assert back.status_code == 400 and set(back.json()) == {"password"}


def test_a_custom_token_url_on_a_private_address_is_refused(
    database: str, make_user, oauth2_dovecot: DovecotServer, oauth2_server: OAuth2Server
) -> None:
    settings.oauth2_allow_private = True  # for the validation of the http URL
    try:
        mirror = new_mirror(
            make_user,
            oauth2_dovecot,
            oauth2_provider="custom",
            oauth2_token_url=oauth2_server.token_url,
            oauth2_client_id=OAUTH2_CLIENT_ID,
            oauth2_client_secret=OAUTH2_CLIENT_SECRET,
        )
        issued = oauth2_server.issue_tokens(mirror.mail_user, OAUTH2_CLIENT_ID)
        mirror.configure(oauth2_refresh_token=issued["refresh_token"])
        assert mirror.sync().status == "success"  # allowed: refreshed at the custom URL
        oauth2_server.expire_access_tokens(mirror.mail_user)
        settings.oauth2_allow_private = False
        run = mirror.sync()
    finally:
        settings.oauth2_allow_private = False
    # Refused before any request: an owner cannot make the worker post to internal services.
    assert run.error_code == "OAUTH2_REFRESH_FAILED" and "IMAP2API_OAUTH2_ALLOW_PRIVATE" in run.error
    assert oauth2_server.refresh_count == 1


def test_no_token_or_secret_leaves_encrypted_storage(
    client, byo: Mirror, oauth2_server: OAuth2Server, caplog: pytest.LogCaptureFixture, make_user
) -> None:
    caplog.set_level(logging.DEBUG)
    assert byo.sync().status == "success"
    oauth2_server.expire_access_tokens(byo.mail_user)
    assert byo.sync().status == "success"
    oauth2_server.revoke(byo.mail_user)
    oauth2_server.expire_access_tokens(byo.mail_user)
    failed = byo.sync()
    secrets = {
        value
        for request in oauth2_server.token_requests
        for name, value in request.items()
        if name in ("refresh_token", "client_secret", "code", "code_verifier")
    }
    with session_scope() as session:
        server = session.get(ImapServer, byo.server_id)
        assert server is not None
        secrets |= {tokens._plain(server.oauth2_access_token_encrypted)} - {""}  # noqa: SLF001
    assert secrets
    admin_name, admin_password, _ = make_user(admin=True)
    admin = Admin(client, admin_name, admin_password)
    # Everything the service and its libraries logged (the authorization server's own logs aside).
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("authlib", "werkzeug"))
    )
    places = {
        "logs": logged,
        "error": failed.error,
        "api": client.get(f"{SERVERS}{byo.server_id}/", headers=byo.headers).text,
        "events": str(byo.events()),
        "metrics": client.get("/metrics").text,
        "admin": admin.get(f"/admin/imap-server/details/{byo.server_id}").text,
        "admin list": admin.get("/admin/imap-server/list").text,
        "admin form": admin.get(f"/admin/imap-server/edit/{byo.server_id}").text,
    }
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a token or secret in the {place}"
    assert byo.mail_user in places["admin"]  # the page was really the server's


def test_microsoft_refreshes_name_the_scope(
    database: str, make_user, oauth2_dovecot: DovecotServer, oauth2_server: OAuth2Server, monkeypatch
) -> None:
    monkeypatch.setattr(settings, "oauth2_microsoft_client_id", OAUTH2_CLIENT_ID)
    monkeypatch.setattr(settings, "oauth2_microsoft_client_secret", OAUTH2_CLIENT_SECRET)
    monkeypatch.setattr(settings, "oauth2_microsoft_token_url", oauth2_server.token_url)
    mirror = new_mirror(make_user, oauth2_dovecot, oauth2_provider="microsoft")
    issued = oauth2_server.issue_tokens(
        mirror.mail_user, OAUTH2_CLIENT_ID, scope=settings.oauth2_microsoft_scope
    )
    mirror.configure(oauth2_refresh_token=issued["refresh_token"])
    run = mirror.sync()
    assert run.status == "success", run.error
    (refresh,) = [
        request for request in oauth2_server.token_requests if request["grant_type"] == "refresh_token"
    ]
    # Microsoft's v2.0 endpoint documents scope as required on a refresh; Google's needs none.
    assert refresh["scope"] == settings.oauth2_microsoft_scope


def test_switching_auth_type_never_carries_a_secret_to_a_new_destination(
    client, auth, byo: Mirror, oauth2_server: OAuth2Server
) -> None:
    # Tokens left behind: to password with a new host (and its password), then back to oauth2.
    url = f"{SERVERS}{byo.server_id}/"
    moved = client.patch(
        url,
        json={"auth_type": "password", "password": "pw", "host": "imap.elsewhere.example"},
        headers=byo.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["oauth2_token_stored"] is False
    back = client.patch(url, json={"auth_type": "oauth2"}, headers=byo.headers)
    assert back.status_code == 200 and back.json()["oauth2_token_stored"] is False
    assert stored(byo.server_id).oauth2_refresh_token_encrypted == ""
    # A password left behind: a password server goes oauth2 with a new host, then back to password.
    created = client.post(
        SERVERS,
        json={"name": "p", "host": "imap.example.com", "username": "u@example.com", "password": "secret"},
        headers=auth,
    )
    other = f"{SERVERS}{created.json()['id']}/"
    away = client.patch(
        other,
        json={"auth_type": "oauth2", "oauth2_provider": "google", "host": "imap.attacker.example"},
        headers=auth,
    )
    assert away.status_code == 200, away.text
    returned = client.patch(other, json={"auth_type": "password"}, headers=auth)
    assert returned.status_code == 400 and set(returned.json()) == {"password"}


def test_writes_and_downloads_refresh_the_token_too(client, byo: Mirror, oauth2_server: OAuth2Server) -> None:
    assert byo.sync().status == "success"
    (email,) = byo.emails()
    oauth2_server.expire_access_tokens(byo.mail_user)
    # A write connects (and refreshes) while the request's own session is open.
    answer = client.patch(f"/api/emails/{email.id}/", headers=byo.headers, json={"seen": True})
    assert answer.status_code == 200, answer.text
    assert answer.json()["seen"] is True and oauth2_server.refresh_count == 2
    oauth2_server.expire_access_tokens(byo.mail_user)
    raw = client.get(f"/api/emails/{email.id}/raw/", headers=byo.headers)
    assert raw.status_code == 200 and b"Hello over OAuth2" in raw.content
    assert oauth2_server.refresh_count == 3
