"""The hosted OAuth2 flow in a real headless Chromium: consent at the provider, back to the callback, synced.

The app runs under uvicorn with its embedded worker (``tests/support/browser.py``), "Google" is the test
authorization server (``tests/support/oauth2_server.py``) and the mailbox is on the Dovecot that checks
that server's tokens by introspection, so the account is mirrored only if the flow really stored working
tokens. The browser reaches nothing but loopback. The refusals that need no browser (who may start a
flow, where it may return to, unknown states) are checked with plain HTTP at the end.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from imap2api.config import settings
from imap2api.db import session_scope
from imap2api.models import ImapServer
from imap2api.security import decrypt_secret
from tests.conftest import OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET
from tests.support.browser import offline_browser, require_browser, running_app
from tests.support.dovecot import DovecotServer
from tests.support.messages import make_message
from tests.support.oauth2_server import OAuth2Server

SYNC_WAIT_SECONDS = 30
CALLBACK = re.compile(r"/oauth2/callback\?")
# Chromium logs every 4xx document it loads as a console error: expected on the refusal pages.
REFUSED_PAGE = re.compile(r"^console: Failed to load resource: the server responded with a status of 400")


@pytest.fixture()
def provider(oauth2_server: OAuth2Server, monkeypatch: pytest.MonkeyPatch) -> OAuth2Server:
    """The test authorization server, configured as both Google and Microsoft (the app runs in-process)."""
    for name in ("google", "microsoft"):
        monkeypatch.setattr(settings, f"oauth2_{name}_client_id", OAUTH2_CLIENT_ID)
        monkeypatch.setattr(settings, f"oauth2_{name}_client_secret", OAUTH2_CLIENT_SECRET)
        monkeypatch.setattr(settings, f"oauth2_{name}_authorize_url", oauth2_server.authorize_url)
        monkeypatch.setattr(settings, f"oauth2_{name}_token_url", oauth2_server.token_url)
    # Blank: the callback's base comes from the request, i.e. whatever port uvicorn got.
    monkeypatch.setattr(settings, "public_url", "")
    return oauth2_server


@pytest.fixture()
def app_url(database: str, provider: OAuth2Server) -> Iterator[str]:
    """The app with its embedded worker under uvicorn; yields its base URL."""
    with running_app(run_worker=True) as url:
        yield url


class Account:
    """An imap2api user with an oauth2 (Google) server on a fresh mailbox of the OAuth2 Dovecot."""

    def __init__(self, app_url: str, token: str, mail_user: str, server_id: int, subject: str) -> None:
        self.http = httpx.Client(
            base_url=app_url, headers={"Authorization": f"Token {token}"}, trust_env=False, timeout=10
        )
        self.mail_user = mail_user
        self.server_id = server_id
        self.subject = subject

    def server(self) -> dict[str, Any]:
        """The server as the REST API shows it."""
        response = self.http.get(f"/api/imap-servers/{self.server_id}/")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def authorization_url(self, **params: str) -> str:
        """Start a flow (``redirect=false``: the URL as JSON) and return the provider's consent URL."""
        response = self.http.get(
            "/api/oauth2/google/authorize/",
            params={"imap_server": str(self.server_id), "redirect": "false", **params},
        )
        assert response.status_code == 200, response.text
        url: str = response.json()["authorization_url"]
        return url

    def wait_for_sync(self) -> dict[str, Any]:
        """The server once a sync (queued by the callback) has succeeded, or as it is after the wait."""
        deadline = time.monotonic() + SYNC_WAIT_SECONDS
        while True:
            server = self.server()
            if server["last_sync_status"] == "success" or time.monotonic() > deadline:
                return server
            time.sleep(0.1)

    def emails(self) -> list[dict[str, Any]]:
        """The server's mirrored emails."""
        response = self.http.get("/api/emails/", params={"imap_server": str(self.server_id)})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


@pytest.fixture()
def account(app_url: str, make_user, oauth2_dovecot: DovecotServer) -> Iterator[Account]:
    """A user, a mailbox holding one message, and the user's oauth2 server for it (no tokens yet)."""
    _, _, token = make_user()
    # An address as the user name: the flow passes only addresses on as the consent page's login_hint.
    mail_user = oauth2_dovecot.add_user(f"user-{secrets.token_hex(4)}@example.test")
    subject = f"Hello over OAuth2 {secrets.token_hex(3)}"
    oauth2_dovecot.add_message(mail_user, "INBOX", make_message(subject=subject))
    with httpx.Client(base_url=app_url, trust_env=False, timeout=10) as http:
        created = http.post(
            "/api/imap-servers/",
            headers={"Authorization": f"Token {token}"},
            json={
                "name": "Gmail (test)",
                "host": oauth2_dovecot.host,
                "port": oauth2_dovecot.ssl_port,
                "tls_mode": "ssl",
                "username": mail_user,
                "auth_type": "oauth2",
                "oauth2_provider": "google",
            },
        )
    assert created.status_code == 201, created.text
    assert created.json()["oauth2_token_stored"] is False
    result = Account(app_url, token, mail_user, created.json()["id"], subject)
    try:
        yield result
    finally:
        result.http.close()


def _stored_tokens(server_id: int) -> tuple[str, str]:
    """The access and refresh tokens the app stored (decrypted from the database)."""
    with session_scope() as session:
        server = session.get(ImapServer, server_id)
        assert server is not None
        return (
            decrypt_secret(server.oauth2_access_token_encrypted),
            decrypt_secret(server.oauth2_refresh_token_encrypted),
        )


def _consent_and_allow(page: Any, url: str, mail_user: str) -> Any:
    """Open the consent page, check its prefilled user, allow; returns the callback's response."""
    from playwright.sync_api import expect  # optional dependency (see require_browser)

    page.goto(url)
    expect(page.locator("#username")).to_have_value(mail_user)
    with page.expect_response(CALLBACK) as callback:
        page.click("#allow")
    return callback.value


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_connecting_an_account_in_the_browser_stores_tokens_and_syncs_it(
    account: Account, provider: OAuth2Server, app_url: str, tmp_path: Path
) -> None:
    """Consent, callback page, a sync with the tokens (never shown); a replayed callback changes nothing."""
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    url = account.authorization_url()
    assert url.startswith(provider.authorize_url + "?")
    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        callback = _consent_and_allow(page, url, account.mail_user)
        assert callback.status == 200
        assert callback.url.startswith(f"{app_url}/oauth2/callback?")
        expect(page.locator("h1")).to_have_text("Account connected")
        expect(page.locator("#outcome")).to_contain_text("Connected")
        connected_page = page.content()

        server = account.wait_for_sync()
        assert server["last_sync_status"] == "success", server
        assert [email["subject"] for email in account.emails()] == [account.subject]

        # A reload, a back button or a leaked URL: the state is good once.
        replay = page.goto(callback.url)
        assert replay is not None and replay.status == 400
        expect(page.locator("h1")).to_have_text("Account not connected")
        expect(page.locator("#outcome")).to_contain_text("expired or was already used")
        replay_page = page.content()

    assert browser.router.blocked == [], f"the flow tried to reach the internet: {browser.router.blocked}"
    assert [problem for problem in browser.problems if not REFUSED_PAGE.match(problem)] == []

    assert server["auth_type"] == "oauth2" and server["oauth2_provider"] == "google"
    assert server["oauth2_token_stored"] is True
    assert server["needs_reauth"] is False
    assert server["last_error"] == ""

    # The tokens stored are the provider's, for this mailbox, and nothing shows them (or the code).
    access_token, refresh_token = _stored_tokens(account.server_id)
    assert provider.username_of(access_token) == account.mail_user
    assert provider.introspections >= 1  # the sync logged in with the token: Dovecot asked the provider
    [exchange] = provider.token_requests
    secret_values = [access_token, refresh_token, exchange["code"], exchange["code_verifier"]]
    shown = [connected_page, replay_page]
    shown += [
        account.http.get(path).text
        for path in ("/api/imap-servers/", f"/api/imap-servers/{account.server_id}/")
    ]
    for text in shown:
        for value in secret_values:
            assert value not in text

    # PKCE: an S256 challenge and a state went to the provider, the verifier came with the code.
    authorize = provider.last_authorize_params
    assert authorize["code_challenge_method"] == "S256" and authorize["code_challenge"]
    assert authorize["state"] and authorize["login_hint"] == account.mail_user
    assert authorize["redirect_uri"] == f"{app_url}/oauth2/callback"
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    assert exchange["redirect_uri"] == authorize["redirect_uri"]

    # The replay changed nothing: no new exchange, the same tokens, the same server.
    assert provider.code_exchanges == 1
    assert _stored_tokens(account.server_id) == (access_token, refresh_token)
    assert account.server() == server


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_declining_at_the_provider_leaves_the_server_without_tokens(
    account: Account, provider: OAuth2Server, tmp_path: Path
) -> None:
    """Deny on the consent page: a 400 page saying access was declined, no tokens stored."""
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    before = account.server()
    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        page.goto(account.authorization_url())
        with page.expect_response(CALLBACK) as callback:
            page.click("#deny")
        assert callback.value.status == 400
        assert parse_qs(urlsplit(callback.value.url).query)["error"] == ["access_denied"]
        expect(page.locator("h1")).to_have_text("Account not connected")
        expect(page.locator("#outcome")).to_contain_text("You declined access")

    assert browser.router.blocked == [], browser.router.blocked
    assert [problem for problem in browser.problems if not REFUSED_PAGE.match(problem)] == []
    assert provider.code_exchanges == 0 and provider.token_requests == []
    after = account.server()
    assert after["oauth2_token_stored"] is False and after["needs_reauth"] is False
    assert after == before


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_flow_returns_the_browser_to_return_to_with_the_outcome(
    account: Account, provider: OAuth2Server, app_url: str, tmp_path: Path
) -> None:
    """With return_to the browser ends at that path of the app, with imap_server and oauth2=connected."""
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    url = account.authorization_url(return_to="/healthz?from=settings")
    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        callback = _consent_and_allow(page, url, account.mail_user)
        assert callback.status == 303
        expect(page).to_have_url(re.compile(re.escape(f"{app_url}/healthz?")))
        landed = urlsplit(page.url)
        assert landed.path == "/healthz"
        query = parse_qs(landed.query)
        # The caller's own query is kept, the outcome added.
        assert query == {
            "from": ["settings"],
            "imap_server": [str(account.server_id)],
            "oauth2": ["connected"],
        }

    assert browser.router.blocked == [], browser.router.blocked
    assert browser.problems == [], browser.problems
    assert account.server()["oauth2_token_stored"] is True


# -- without a browser -------------------------------------------------------------------------


def _server(client, headers: dict[str, str]) -> int:  # noqa: ANN001
    """An oauth2 (Google) server of the user with ``headers``; never synced here."""
    response = client.post(
        "/api/imap-servers/",
        headers=headers,
        json={
            "name": "Gmail",
            "host": "imap.example.test",
            "port": 993,
            "username": "someone@example.test",
            "auth_type": "oauth2",
            "oauth2_provider": "google",
        },
    )
    assert response.status_code == 201, response.text
    server_id: int = response.json()["id"]
    return server_id


@pytest.mark.parametrize("name", ["google", "microsoft"])
def test_authorize_redirects_to_the_provider(client, auth, provider: OAuth2Server, name: str) -> None:  # noqa: ANN001
    """The default answer is a 302 to the provider's consent page, the same URL in the JSON body."""
    server_id = _server(client, auth)
    response = client.get(
        f"/api/oauth2/{name}/authorize/",
        params={"imap_server": server_id},
        headers=auth,
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    assert response.headers["location"] == response.json()["authorization_url"]
    assert response.json()["expires_at"]
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == provider.authorize_url
    query = parse_qs(location.query)
    assert query["client_id"] == [OAUTH2_CLIENT_ID] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://testserver/oauth2/callback"]
    assert query["login_hint"] == ["someone@example.test"]


def test_authorize_refusals(client, auth, make_user, provider: OAuth2Server) -> None:  # noqa: ANN001
    """No token: 401; another user's server: 404; an unknown provider: 404; a foreign return_to: 400."""
    server_id = _server(client, auth)
    path, params = "/api/oauth2/google/authorize/", {"imap_server": server_id, "redirect": "false"}

    assert client.get(path, params=params).status_code == 401

    _, _, other_token = make_user()
    others = client.get(path, params=params, headers={"Authorization": f"Token {other_token}"})
    assert others.status_code == 404, others.text

    unknown = client.get("/api/oauth2/yahoo/authorize/", params=params, headers=auth)
    assert unknown.status_code == 404, unknown.text

    # No open redirect: the flow would otherwise send a signed-in browser anywhere.
    evil = client.get(path, params={**params, "return_to": "https://evil.example/"}, headers=auth)
    assert evil.status_code == 400, evil.text
    assert list(evil.json()) == ["return_to"]
    assert provider.last_authorize_params == {}


def test_a_callback_with_an_unknown_state_is_refused(client, provider: OAuth2Server) -> None:  # noqa: ANN001
    """A state nobody issued: a 400 page, and the provider is not asked for anything."""
    response = client.get("/oauth2/callback", params={"state": "not-a-state", "code": "whatever"})
    assert response.status_code == 400
    assert "expired or was already used" in response.text
    assert provider.token_requests == []
