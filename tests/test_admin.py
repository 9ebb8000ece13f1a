"""The admin interface at /admin over HTTP, on SQLite and PostgreSQL, with the embedded worker.

Who gets in (active admins only, by password, in a SameSite=Strict cookie naming a server-side
session that logout, expiry or a password change ends), the CSRF guard, that no admin URL serves a
file of the server, that no password hash, token hash or encrypted secret is ever rendered,
and each admin task end to end: users (reset password, make admin, revoke tokens), IMAP servers
("sync now" against the real Dovecot, last error), webhooks (secret shown once, rotate, test,
disable) with deliveries (a real receiver, signatures checked independently, redeliver), and
read-only mail. The same tasks in a real browser are in ``test_admin_browser.py``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqladmin
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from imap2api.admin.auth import COOKIE_NAME
from imap2api.admin.site import VIEWS
from imap2api.app import create_app
from imap2api.config import settings
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.models import (
    AdminSession,
    Email,
    ImapServer,
    OutboxMessage,
    SyncRun,
    User,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from imap2api.security import decrypt_secret, encrypt_secret, hash_token_key
from tests.support.messages import make_message
from tests.support.receiver import Receiver
from tests.support.webhook_checks import spec_verify, wait_until

ORIGIN = {"Origin": "http://testserver"}
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{32,}")


class Admin:
    """A test client logged in to /admin, sending the Origin header a browser would."""

    def __init__(self, client, username: str, password: str) -> None:  # noqa: ANN001
        self.client = client
        self.username = username
        self.login(username, password)

    def login(self, username: str, password: str):  # noqa: ANN201
        """Post the login form; returns the response (302 on success)."""
        return self.client.post(
            "/admin/login",
            data={"username": username, "password": password},
            headers=ORIGIN,
            follow_redirects=False,
        )

    def get(self, path: str, **kwargs):  # noqa: ANN003, ANN201
        """A page, as a same-origin navigation."""
        return self.client.get(path, headers=ORIGIN, follow_redirects=False, **kwargs)

    def post(self, path: str, data: dict):  # noqa: ANN201
        """Submit a form, as a same-origin browser does."""
        return self.client.post(path, data=data, headers=ORIGIN, follow_redirects=False)


def logged_in(response) -> bool:  # noqa: ANN001
    """Whether an admin page was served (not the login redirect)."""
    return response.status_code == 200 and "/admin/logout" in response.text


@pytest.fixture()
def admin(client, make_user) -> Admin:  # noqa: ANN001
    """An admin user logged in to the admin interface."""
    username, password, _ = make_user(admin=True)
    session = Admin(client, username, password)
    assert logged_in(session.get("/admin/user/list"))
    return session


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback."""
    with Receiver() as running:
        yield running


def user_id(username: str) -> int:
    """The id of a user by name."""
    with session_scope() as session:
        return crud_users.get_user_by_username(session, username=username).id


def row(model, pk: int):  # noqa: ANN001, ANN201
    """A stored row, read fresh."""
    with session_scope() as session:
        return session.get(model, pk)


# --- who gets in -------------------------------------------------------------------------------


def test_anonymous_and_non_admin_users_get_nothing(client, make_user) -> None:  # noqa: ANN001
    for path in (
        "/admin/",
        "/admin/user/list",
        "/admin/webhook/list",
        "/admin/email/details/1",
        "/admin/webhook/create",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 302 and response.headers["location"].endswith("/admin/login"), path
    username, password, token = make_user()
    outsider = Admin(client, username, password)
    refused = outsider.login(username, password)
    assert refused.status_code == 400 and "Invalid credentials" in refused.text
    assert not logged_in(outsider.get("/admin/user/list"))
    # A valid API token is no way in either.
    assert not logged_in(
        client.get("/admin/user/list", headers={"Authorization": f"Token {token}"}, follow_redirects=False)
    )


def test_admin_login_sets_a_strict_http_only_cookie_and_logout_ends_it(client, make_user) -> None:  # noqa: ANN001
    username, password, _ = make_user(admin=True)
    session = Admin(client, username, "wrong-password")
    assert not logged_in(session.get("/admin/"))
    response = session.login(username, password)
    assert response.status_code == 302 and response.headers["location"].endswith("/admin/")
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("imap2api_admin=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
    assert logged_in(session.get("/admin/"))
    assert session.get("/admin/logout").status_code == 302
    assert not logged_in(session.get("/admin/user/list"))


def test_a_password_change_or_lost_admin_rights_end_existing_sessions(client, make_user) -> None:  # noqa: ANN001
    username, password, _ = make_user(admin=True)
    session = Admin(client, username, password)
    assert logged_in(session.get("/admin/"))
    with session_scope() as db:
        crud_users.set_password(
            db, user=crud_users.get_user_by_username(db, username=username), password="a-new-password"
        )
    assert not logged_in(session.get("/admin/"))
    assert session.login(username, "a-new-password").status_code == 302
    with session_scope() as db:
        db.get(User, user_id(username)).is_admin = False
    assert not logged_in(session.get("/admin/"))


def copied_cookie(client) -> dict[str, str]:  # noqa: ANN001
    """The admin session cookie of a client, as a header another client can replay."""
    return {"Cookie": f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}", **ORIGIN}


def test_logout_revokes_the_session_for_every_copy_of_its_cookie(client, make_user) -> None:  # noqa: ANN001
    username, password, _ = make_user(admin=True)
    first = Admin(client, username, password)
    stolen = copied_cookie(client)
    thief = TestClient(client.app, base_url="http://testserver")
    assert logged_in(thief.get("/admin/user/list", headers=stolen, follow_redirects=False))
    second = Admin(TestClient(client.app, base_url="http://testserver"), username, password)
    assert logged_in(second.get("/admin/user/list"))

    assert first.get("/admin/logout").status_code == 302
    replayed = thief.get("/admin/user/list", headers=stolen, follow_redirects=False)
    assert replayed.status_code == 302 and replayed.headers["location"].endswith("/admin/login")
    # Only that session ended: the same admin's other session goes on.
    assert logged_in(second.get("/admin/user/list"))


def test_an_expired_session_is_refused_and_swept_at_the_next_login(client, make_user) -> None:  # noqa: ANN001
    username, password, _ = make_user(admin=True)
    session = Admin(client, username, password)
    with session_scope() as db:
        [row] = db.exec(select(AdminSession).where(AdminSession.user_id == user_id(username))).all()
        row.expires_at = utcnow() - timedelta(seconds=1)
        expired_hash = row.key_hash  # not the id: SQLite may give a deleted row's id to the next one
    # The cookie itself is still validly signed and within its max-age: only the database says no.
    assert not logged_in(session.get("/admin/user/list"))
    # A login from another browser (which has no old session to end) sweeps it.
    Admin(TestClient(client.app, base_url="http://testserver"), username, password)
    with session_scope() as db:
        assert db.exec(select(AdminSession).where(AdminSession.key_hash == expired_hash)).first() is None
        assert len(db.exec(select(AdminSession).where(AdminSession.user_id == user_id(username))).all()) == 1


def test_login_attempts_spend_the_anonymous_budget_but_admin_pages_do_not(make_user, monkeypatch) -> None:
    monkeypatch.setattr(settings, "rate_limit_anon", "3/hour")
    username, password, _ = make_user(admin=True)
    with TestClient(create_app(run_worker=False), base_url="http://testserver") as client:
        session = Admin(client, username, password)
        for _ in range(10):
            assert logged_in(session.get("/admin/webhook/list"))
        assert session.login(username, "wrong").status_code == 400
        assert session.login(username, "wrong").status_code == 400
        throttled = session.login(username, password)
        assert throttled.status_code == 429 and "Retry-After" in throttled.headers
        # The login page itself still loads (a failed attempt ended the earlier session).
        assert session.get("/admin/login").status_code == 200


def test_state_changing_requests_from_another_site_are_refused(admin: Admin, make_user) -> None:
    victim, _, _ = make_user()
    victim_id = user_id(victim)
    cross_site = [
        {},  # no Origin, Referer or Sec-Fetch-Site: not a browser request from our pages
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
        {"Sec-Fetch-Site": "same-site"},
    ]
    for headers in cross_site:
        edit = admin.client.post(
            f"/admin/user/edit/{victim_id}",
            headers=headers,
            follow_redirects=False,
            data={"username": "hijacked", "is_admin": "y", "is_active": "y"},
        )
        assert edit.status_code == 403, headers
        action = admin.client.get(
            f"/admin/user/action/make-admin?pks={victim_id}", headers=headers, follow_redirects=False
        )
        assert action.status_code == 403, headers
        login = admin.client.post("/admin/login", data={"username": "x", "password": "y"}, headers=headers)
        assert login.status_code == 403, headers
    assert row(User, victim_id).username == victim and not row(User, victim_id).is_admin
    # The same requests from the admin's own pages go through.
    same_site = admin.client.get(
        f"/admin/user/action/make-admin?pks={victim_id}",
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert same_site.status_code == 302 and row(User, victim_id).is_admin


# --- no files of the server ---------------------------------------------------------------------


def test_no_admin_url_serves_a_file_of_the_server(admin: Admin, mirror, monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    database = (settings.data_dir / "imap2api.sqlite3").resolve()
    secret = tmp_path / "secret_key"
    marker = "not-to-be-served-" + secrets.token_hex(8)
    secret.write_text(marker)
    # sqladmin resolved a text value as a path under the working directory: stand where both are.
    root = Path(os.path.commonpath([database, secret.resolve()]))
    monkeypatch.chdir(root)
    with session_scope() as db:
        named = crud_users.create_user(db, username=str(database.relative_to(root)), password="x" * 12)
        named_id = named.id
    # Mail is written by strangers: a subject naming a file of the server.
    mirror.deliver(make_message(subject=str(secret.resolve().relative_to(root))))
    mirror.sync()
    [email] = mirror.emails()
    pks = {"user": named_id, "email": email.id}
    for view in VIEWS:
        for column in view.model.__table__.columns:
            for kind in ("download", "preview"):
                path = f"/admin/{view.identity}/{pks.get(view.identity, 1)}/{column.name}/{kind}/"
                response = admin.get(path)
                assert response.status_code == 404, path
                assert b"SQLite format 3" not in response.content and marker not in response.text, path


def test_the_admin_mounts_no_file_serving_route(client) -> None:  # noqa: ANN001
    [admin_app] = [route.app for route in client.app.routes if getattr(route, "name", None) == "admin"]
    package = Path(sqladmin.__file__).parent.resolve()
    for route in admin_app.routes:
        endpoint = getattr(route, "endpoint", None)
        assert getattr(endpoint, "__name__", "") not in ("file_download", "file_preview"), route
        assert "download" not in route.path and "preview" not in route.path, route.path
        if isinstance(route, Mount):
            # The one mount is sqladmin's own assets.
            assert isinstance(route.app, StaticFiles), route.path
            assert all(
                Path(directory).resolve().is_relative_to(package) for directory in route.app.all_directories
            ), route.app.all_directories


# --- users -------------------------------------------------------------------------------------


def test_users_are_listed_without_password_or_token_hashes(admin: Admin, make_user) -> None:
    username, _, token = make_user()
    pages = [
        admin.get("/admin/user/list"),
        admin.get(f"/admin/user/details/{user_id(username)}"),
        admin.get(f"/admin/user/edit/{user_id(username)}"),
        admin.get("/admin/api-token/list"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "scrypt$" not in page.text and token not in page.text
    assert username in pages[0].text
    assert hash_token_key(token) not in pages[3].text and token[:8] in pages[3].text


def test_an_admin_creates_a_user_resets_a_password_and_makes_an_admin(admin: Admin, client) -> None:  # noqa: ANN001
    name = "created-" + secrets.token_hex(4)
    missing = admin.post("/admin/user/create", {"username": name, "is_active": "y"})
    assert missing.status_code == 400 and "password" in missing.text
    created = admin.post(
        "/admin/user/create",
        {"username": name, "password": "first-password", "is_active": "y", "save": "Save"},
    )
    assert created.status_code == 302
    new_id = user_id(name)
    duplicate = admin.post("/admin/user/create", {"username": name, "password": "x" * 10, "is_active": "y"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.text
    reset = admin.post(
        f"/admin/user/edit/{new_id}",
        {"username": name, "password": "second-password", "is_active": "y", "save": "Save"},
    )
    assert reset.status_code == 302
    with session_scope() as db:
        assert crud_users.authenticate_user(db, username=name, password="first-password") is None
        assert crud_users.authenticate_user(db, username=name, password="second-password")
    token = client.post("/api-token-auth/", data={"username": name, "password": "second-password"})
    assert token.status_code == 200
    made = admin.get(f"/admin/user/action/make-admin?pks={new_id}")
    assert made.status_code == 302
    assert Admin(client, name, "second-password").get("/admin/").status_code == 200


def test_an_admin_deletes_a_user_with_their_data_but_cannot_lock_themselves_out(admin: Admin, mirror) -> None:
    gone = admin.client.request("DELETE", f"/admin/user/delete?pks={mirror.owner_id}", headers=ORIGIN)
    assert gone.status_code == 200 and "error" not in gone.text
    assert row(User, mirror.owner_id) is None and row(ImapServer, mirror.server_id) is None
    own_id = user_id(admin.username)
    demoted = admin.post(f"/admin/user/edit/{own_id}", {"username": "whatever", "is_active": "y"})
    assert demoted.status_code == 400 and "your own admin rights" in demoted.text
    deleted = admin.client.request("DELETE", f"/admin/user/delete?pks={own_id}", headers=ORIGIN)
    assert deleted.status_code == 200 and "cannot delete yourself" in deleted.text.replace("+", " ")
    assert logged_in(admin.get("/admin/"))


def test_revoking_tokens_locks_the_api_out(admin: Admin, client, make_user) -> None:  # noqa: ANN001
    username, _, token = make_user()
    headers = {"Authorization": f"Token {token}"}
    assert client.get("/api/imap-servers/", headers=headers).status_code == 200
    response = admin.get(f"/admin/user/action/revoke-tokens?pks={user_id(username)}")
    assert response.status_code == 302
    assert client.get("/api/imap-servers/", headers=headers).status_code == 401


# --- IMAP servers and sync runs ----------------------------------------------------------------


def server_form(owner_id: int, dovecot, mail_user: str, **overrides) -> dict:  # noqa: ANN001
    """The create form of an IMAP server pointing at the Dovecot fixture."""
    form = {
        "owner_id": str(owner_id),
        "name": "Work",
        "host": dovecot.host,
        "port": str(dovecot.port),
        "username": mail_user,
        "password": "secret",
        "tls_mode": "starttls",
        "sync_limit_type": "all",
        "folders_to_sync": "",
        "exclude_trash": "y",
        "is_active": "y",
        "save": "Save",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_an_admin_adds_a_server_syncs_it_now_and_sees_the_run(
    admin: Admin, make_user, dovecot, user: str
) -> None:
    owner, _, _ = make_user()
    owner_id = user_id(owner)
    dovecot.add_message(user, "INBOX", make_message(subject="Quarterly numbers"))
    invalid = admin.post(
        "/admin/imap-server/create", server_form(owner_id, dovecot, user, sync_limit_type="days")
    )
    assert invalid.status_code == 400 and "sync_limit_value" in invalid.text
    created = admin.post("/admin/imap-server/create", server_form(owner_id, dovecot, user))
    assert created.status_code == 302
    with session_scope() as session:
        server = session.exec(select(ImapServer).where(ImapServer.owner_id == owner_id)).one()
    assert decrypt_secret(server.password_encrypted) == "secret"
    for page in (
        admin.get(f"/admin/imap-server/details/{server.id}"),
        admin.get(f"/admin/imap-server/edit/{server.id}"),
        admin.get("/admin/imap-server/list"),
    ):
        assert page.status_code == 200 and server.password_encrypted not in page.text
        assert 'value="secret"' not in page.text
    # Editing without a password keeps the stored one.
    kept = admin.post(
        f"/admin/imap-server/edit/{server.id}",
        server_form(owner_id, dovecot, user, name="Renamed", password=""),
    )
    assert kept.status_code == 302 and row(ImapServer, server.id).name == "Renamed"
    assert decrypt_secret(row(ImapServer, server.id).password_encrypted) == "secret"

    queued = admin.get(f"/admin/imap-server/action/sync-now?pks={server.id}")
    assert queued.status_code == 302 and f"imap_server_id={server.id}" in queued.headers["location"]

    def finished() -> SyncRun | None:
        with session_scope() as session:
            run = session.exec(select(SyncRun).where(SyncRun.imap_server_id == server.id)).first()
        return run if run is not None and run.status not in ("queued", "running") else None

    run = wait_until(finished, timeout=60, what="the sync")
    assert run.status == "success", run.error
    runs = admin.get(f"/admin/sync-run/list?imap_server_id={server.id}")
    assert runs.status_code == 200 and "success" in runs.text and "1/1 (100 %)" in runs.text
    with session_scope() as session:
        email = session.exec(select(Email).where(Email.imap_server_id == server.id)).one()
    mail = admin.get(f"/admin/email/details/{email.id}")
    assert mail.status_code == 200 and "Quarterly numbers" in mail.text
    assert "Quarterly numbers" in admin.get("/admin/email/list?search=Quarterly").text


def test_a_failing_server_shows_its_last_error(admin: Admin, mirror) -> None:  # noqa: ANN001
    with session_scope() as session:
        session.get(ImapServer, mirror.server_id).password_encrypted = encrypt_secret("wrong")
    run = mirror.sync()
    assert run.status == "error"
    pages = (
        admin.get("/admin/imap-server/list"),
        admin.get(f"/admin/imap-server/details/{mirror.server_id}"),
        admin.get(f"/admin/sync-run/details/{run.id}"),
    )
    for page in pages:
        assert page.status_code == 200 and "error" in page.text
        assert run.error[:30] in page.text.replace("&#39;", "'").replace("&#34;", '"')


def test_mail_is_read_only(admin: Admin, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="Read me"))
    mirror.sync()
    [email] = mirror.emails()
    assert admin.get("/admin/email/create").status_code == 403
    assert admin.get(f"/admin/email/edit/{email.id}").status_code == 403
    deleted = admin.client.request("DELETE", f"/admin/email/delete?pks={email.id}", headers=ORIGIN)
    assert deleted.status_code == 403 and len(mirror.emails()) == 1
    assert "Read me" in admin.get("/admin/email/list").text
    # Filters given junk answer a page, not an error.
    assert admin.get("/admin/email/list?owner_id=abc&imap_server_id=1x").status_code == 200


# --- webhooks and deliveries -------------------------------------------------------------------


def webhook_form(owner_id: int, url: str, **overrides) -> dict:
    """The create form of a webhook."""
    form = {
        "owner_id": str(owner_id),
        "url": url,
        "events": ["email.received", "sync.completed"],
        "imap_server_id": "",
        "is_active": "y",
        "save": "Save",
    }
    form.update(overrides)
    return form


def test_an_admin_adds_a_webhook_sees_the_secret_once_and_a_test_delivery(
    admin: Admin, make_user, receiver: Receiver
) -> None:
    owner, _, _ = make_user()
    owner_id = user_id(owner)
    bad = admin.post("/admin/webhook/create", webhook_form(owner_id, "ftp://example.com/hook"))
    assert bad.status_code == 400 and "Enter a valid URL" in bad.text
    created = admin.post("/admin/webhook/create", webhook_form(owner_id, receiver.url))
    assert created.status_code == 200 and "no-store" in created.headers["cache-control"]
    [secret] = set(SECRET.findall(created.text))
    with session_scope() as session:
        webhook = session.exec(select(Webhook).where(Webhook.owner_id == owner_id)).one()
    assert decrypt_secret(webhook.secret_encrypted) == secret
    assert webhook.events == "email.received,sync.completed" and webhook.is_active
    for page in (
        admin.get(f"/admin/webhook/details/{webhook.id}"),
        admin.get("/admin/webhook/list"),
        admin.get(f"/admin/webhook/edit/{webhook.id}"),
    ):
        assert page.status_code == 200
        assert secret not in page.text and webhook.secret_encrypted not in page.text

    tested = admin.get(f"/admin/webhook/action/send-test?pks={webhook.id}")
    assert tested.status_code == 302 and f"webhook_id={webhook.id}" in tested.headers["location"]
    [request] = receiver.wait_for(lambda requests: len(requests) == 1)
    assert request.json["type"] == "webhook.test" and spec_verify(secret, request.headers, request.body)

    def delivered() -> bool:
        with session_scope() as session:
            rows = list(session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)))
        return len(rows) == 1 and rows[0].status == "success"

    wait_until(delivered, what="the delivery to be recorded")
    deliveries = admin.get(f"/admin/webhook-delivery/list?webhook_id={webhook.id}")
    assert deliveries.status_code == 200
    assert "webhook.test" in deliveries.text and "success" in deliveries.text

    # Redeliver: the same event again, a new attempt.
    with session_scope() as session:
        first = session.exec(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)).one()
    assert admin.get(f"/admin/webhook-delivery/action/redeliver?pks={first.id}").status_code == 302
    requests = receiver.wait_for(lambda requests: len(requests) == 2)
    assert requests[1].headers["webhook-id"] == requests[0].headers["webhook-id"]
    detail = admin.get(f"/admin/webhook-delivery/details/{first.id}")
    assert detail.status_code == 200 and "ok" in detail.text


def test_rotation_shows_the_new_secret_once_and_disable_stops_tests(
    admin: Admin, make_user, receiver: Receiver
) -> None:
    owner_id = user_id(make_user()[0])
    first = SECRET.findall(admin.post("/admin/webhook/create", webhook_form(owner_id, receiver.url)).text)[0]
    with session_scope() as session:
        webhook = session.exec(select(Webhook).where(Webhook.owner_id == owner_id)).one()
    rotated = admin.get(f"/admin/webhook/action/rotate-secret?pks={webhook.id}")
    assert rotated.status_code == 302
    assert rotated.headers["location"].endswith(f"/admin/webhook/details/{webhook.id}")
    page = admin.get(f"/admin/webhook/details/{webhook.id}")
    [second] = set(SECRET.findall(page.text))
    assert second != first and decrypt_secret(row(Webhook, webhook.id).secret_encrypted) == second
    assert not SECRET.findall(admin.get(f"/admin/webhook/details/{webhook.id}").text)

    assert admin.get(f"/admin/webhook/action/disable?pks={webhook.id}").status_code == 302
    assert not row(Webhook, webhook.id).is_active
    refused = admin.get(f"/admin/webhook/action/send-test?pks={webhook.id}")
    assert refused.status_code == 302 and "disabled" in admin.get(refused.headers["location"]).text
    assert admin.get(f"/admin/webhook/action/enable?pks={webhook.id}").status_code == 302
    assert row(Webhook, webhook.id).is_active


def test_a_webhook_may_only_name_a_server_of_its_owner(admin: Admin, make_user, mirror) -> None:  # noqa: ANN001
    stranger_id = user_id(make_user()[0])
    refused = admin.post(
        "/admin/webhook/create",
        webhook_form(stranger_id, "https://example.com/hook", imap_server_id=str(mirror.server_id)),
    )
    assert refused.status_code == 400 and "does not belong" in refused.text
    accepted = admin.post(
        "/admin/webhook/create",
        webhook_form(mirror.owner_id, "https://example.com/hook", imap_server_id=str(mirror.server_id)),
    )
    assert accepted.status_code == 200 and SECRET.search(accepted.text)


def test_an_email_page_links_its_attachments_and_frames_its_html(admin: Admin, mirror) -> None:  # noqa: ANN001
    script = '<p onclick="steal()">hi</p><script>steal()</script><img src="https://tracker.example/p.gif">'
    mirror.deliver(
        make_message(
            subject="with files", html=script, attachments=[("a.bin", "application/octet-stream", b"\x00ab")]
        )
    )
    mirror.sync()
    [email] = mirror.emails()
    page = admin.get(f"/admin/email/details/{email.id}")
    assert page.status_code == 200
    # Rendered only inside a sandboxed frame (escaped into srcdoc), never as markup of the admin page.
    assert '<iframe sandbox=""' in page.text and "<script>steal()" not in page.text
    assert "&lt;script&gt;steal()" in page.text
    # The admin's policy (no remote images, no scripts but its own) is what the frame inherits.
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data:" in policy and "https:" not in policy
    link = f"/admin/email/{email.id}/attachments/"
    assert link in page.text and "a.bin" in page.text
    href = page.text[page.text.index(link) :].split('"', 1)[0]
    download = admin.get(href.replace("http://testserver", ""))
    assert download.status_code == 200 and download.content == b"\x00ab"
    assert download.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert admin.get(f"/admin/email/{email.id}/attachments/999999").status_code == 404
    admin.client.cookies.clear()  # logged out: no download
    assert admin.get(href.replace("http://testserver", "")).status_code in (302, 303)


def test_the_outbox_page_shows_messages_without_their_bytes_and_cancels_queued_ones(
    admin: Admin,
    mirror,  # noqa: ANN001
) -> None:
    with session_scope() as session:
        queued = OutboxMessage(
            owner_id=mirror.owner_id,
            imap_server_id=mirror.server_id,
            message_id="<out-1@example.test>",
            subject="Quarterly numbers",
            to='["bob@example.test"]',
            raw=b"Subject: Quarterly numbers\r\nX-Secret-Marker: do-not-show\r\n\r\nbody",
            next_attempt_at=utcnow() + timedelta(hours=1),  # nobody sends it during the test
        )
        session.add(queued)
        session.flush()
        queued_id = queued.id
    listing = admin.get("/admin/outbox-message/list")
    assert listing.status_code == 200 and "Quarterly numbers" in listing.text
    details = admin.get(f"/admin/outbox-message/details/{queued_id}")
    assert details.status_code == 200 and "&lt;out-1@example.test&gt;" in details.text
    assert "do-not-show" not in details.text
    cancelled = admin.get(f"/admin/outbox-message/action/cancel?pks={queued_id}")
    assert f"Cancelled: message #{queued_id}." in admin.get(cancelled.headers["location"]).text
    assert row(OutboxMessage, queued_id).status == "cancelled"
    refused = admin.get(f"/admin/outbox-message/action/cancel?pks={queued_id}")
    assert "only a queued message" in admin.get(refused.headers["location"]).text
