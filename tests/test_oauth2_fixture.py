"""Checks that the OAuth2 test fixtures behave as providers do: the authorization server, Dovecot, SMTP."""

from __future__ import annotations

import html
import json
import re
import secrets
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from imap2api.config import settings
from tests.conftest import OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET, OAUTH2_PUBLIC_CLIENT_ID
from tests.support.dovecot import DovecotServer
from tests.support.oauth2_server import OAuth2Server
from tests.support.smtp import SMTP_USERS, SmtpServer

REDIRECT_URI = "http://127.0.0.1:8765/oauth2/callback"  # nothing listens: the tests read the redirect
SCOPE = "https://mail.google.com/ offline_access"
CONFIDENTIAL = (OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET)


def _authorization_params(client_id: str, verifier: str, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(8),
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return {**params, **extra}


def _redirect_query(response: httpx.Response) -> dict[str, str]:
    """The parameters of the redirect to the client, which must be one."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def _code(http: httpx.Client, server: OAuth2Server, params: dict[str, str], username: str) -> str:
    """Allow the request on the consent page and return the code the redirect carries."""
    query = _redirect_query(http.post(server.authorize_url, params=params, data=_allow(username)))
    assert query["state"] == params["state"]
    return query["code"]


def _allow(username: str) -> dict[str, str]:
    return {"username": username, "decision": "allow"}


def _introspect(http: httpx.Client, server: OAuth2Server, token: str) -> dict[str, object]:
    response = http.post(
        server.introspection_url, data={"token": token}, auth=server.introspection_credentials
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def _refresh(http: httpx.Client, server: OAuth2Server, refresh_token: str) -> httpx.Response:
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return http.post(
        server.token_url, data={**fields, "client_id": CONFIDENTIAL[0], "client_secret": CONFIDENTIAL[1]}
    )


# -- the authorization server ------------------------------------------------------------------


def test_code_flow_with_pkce(oauth2_server: OAuth2Server) -> None:
    verifier = secrets.token_urlsafe(48)
    params = _authorization_params(OAUTH2_CLIENT_ID, verifier, login_hint="alice@example.test")
    with httpx.Client() as http:
        page = http.get(oauth2_server.authorize_url, params=params)
        assert page.status_code == 200
        assert oauth2_server.last_authorize_params == params
        assert 'id="username" name="username" value="alice@example.test"' in page.text
        assert 'id="allow"' in page.text and 'id="deny"' in page.text
        # Submit the form as a browser would: to its action, which keeps the request's parameters.
        action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
        query = _redirect_query(http.post(oauth2_server.base_url + action, data=_allow("alice@example.test")))
        assert query["state"] == params["state"]

        exchange = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI}
        response = http.post(
            oauth2_server.token_url, data={**exchange, "code_verifier": verifier}, auth=CONFIDENTIAL
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] == 3600
        assert tokens["scope"] == SCOPE
        assert tokens["refresh_token"]
        assert oauth2_server.code_exchanges == 1
        assert oauth2_server.token_requests == [{**exchange, "code_verifier": verifier}]

        assert oauth2_server.username_of(tokens["access_token"]) == "alice@example.test"
        introspection = _introspect(http, oauth2_server, tokens["access_token"])
        assert introspection["active"] is True
        assert introspection["username"] == "alice@example.test"
        assert introspection["client_id"] == OAUTH2_CLIENT_ID
        assert introspection["scope"] == SCOPE
        assert _introspect(http, oauth2_server, tokens["refresh_token"]) == {"active": False}
        assert oauth2_server.introspections == 2

        # Codes are single use.
        again = http.post(
            oauth2_server.token_url, data={**exchange, "code_verifier": verifier}, auth=CONFIDENTIAL
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        assert oauth2_server.code_exchanges == 1


def test_public_client_pkce_is_required_and_checked(oauth2_server: OAuth2Server) -> None:
    verifier = secrets.token_urlsafe(48)
    params = _authorization_params(OAUTH2_PUBLIC_CLIENT_ID, verifier)
    with httpx.Client() as http:
        for missing in ({"code_challenge": ""}, {"code_challenge_method": "plain"}):
            query = _redirect_query(http.get(oauth2_server.authorize_url, params={**params, **missing}))
            assert query["error"] == "invalid_request"
        code = _code(http, oauth2_server, params, "bob@example.test")
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": OAUTH2_PUBLIC_CLIENT_ID,
        }
        wrong = http.post(
            oauth2_server.token_url, data={**exchange, "code_verifier": secrets.token_urlsafe(48)}
        )
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"
        assert http.post(oauth2_server.token_url, data=exchange).json()["error"] == "invalid_request"
        response = http.post(oauth2_server.token_url, data={**exchange, "code_verifier": verifier})
        assert response.status_code == 200, response.text
        assert oauth2_server.username_of(response.json()["access_token"]) == "bob@example.test"


def test_authorization_refusals(oauth2_server: OAuth2Server) -> None:
    params = _authorization_params(OAUTH2_CLIENT_ID, secrets.token_urlsafe(48))
    with httpx.Client() as http:
        denied = http.post(
            oauth2_server.authorize_url, params=params, data={"username": "x", "decision": "deny"}
        )
        query = _redirect_query(denied)
        assert query["error"] == "access_denied"
        assert query["state"] == params["state"]

        for wrong in ({"client_id": "nobody"}, {"redirect_uri": "http://127.0.0.1:8765/elsewhere"}):
            page = http.get(oauth2_server.authorize_url, params={**params, **wrong})
            assert page.status_code == 400
            assert "location" not in page.headers
        query = _redirect_query(http.get(oauth2_server.authorize_url, params={**params, "scope": "unknown"}))
        assert query["error"] == "invalid_scope"

        code = _code(http, oauth2_server, params, "carol@example.test")
        fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        response = http.post(oauth2_server.token_url, data={**fields, "client_id": OAUTH2_CLIENT_ID})
        assert response.status_code == 401  # a confidential client must authenticate
        assert response.json()["error"] == "invalid_client"


def test_refresh_rotates_refresh_tokens(oauth2_server: OAuth2Server) -> None:
    tokens = oauth2_server.issue_tokens("dave@example.test", OAUTH2_CLIENT_ID)
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "expires_at", "token_type"}
    with httpx.Client() as http:
        response = _refresh(http, oauth2_server, tokens["refresh_token"])
        assert response.status_code == 200, response.text
        new = response.json()
        assert new["refresh_token"] not in (None, tokens["refresh_token"])
        assert new["expires_in"] == 3600
        assert oauth2_server.username_of(new["access_token"]) == "dave@example.test"
        assert oauth2_server.username_of(tokens["access_token"]) == "dave@example.test"  # until it expires

        old = _refresh(http, oauth2_server, tokens["refresh_token"])
        assert old.status_code == 400
        assert old.json()["error"] == "invalid_grant"
        assert _refresh(http, oauth2_server, new["refresh_token"]).status_code == 200
    assert (oauth2_server.refresh_count, oauth2_server.refresh_attempts) == (2, 3)
    assert oauth2_server.token_requests[0]["refresh_token"] == tokens["refresh_token"]


def test_codes_and_rotated_refresh_tokens_work_once_under_concurrency(oauth2_server: OAuth2Server) -> None:
    verifier = secrets.token_urlsafe(48)
    with httpx.Client() as http, ThreadPoolExecutor(8) as pool:
        code = _code(
            http, oauth2_server, _authorization_params(OAUTH2_CLIENT_ID, verifier), "hana@example.test"
        )
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        codes = list(
            pool.map(lambda _: http.post(oauth2_server.token_url, data=exchange, auth=CONFIDENTIAL), range(8))
        )
        assert sorted(response.status_code for response in codes) == [200] + [400] * 7
        refresh_token = next(response.json() for response in codes if response.status_code == 200)[
            "refresh_token"
        ]
        refreshes = list(pool.map(lambda _: _refresh(http, oauth2_server, refresh_token), range(8)))
        assert sorted(response.status_code for response in refreshes) == [200] + [400] * 7
    assert (oauth2_server.code_exchanges, oauth2_server.refresh_count, oauth2_server.refresh_attempts) == (
        1,
        1,
        8,
    )


def test_expire_and_revoke(oauth2_server: OAuth2Server) -> None:
    tokens = oauth2_server.issue_tokens("erin@example.test", OAUTH2_CLIENT_ID)
    other = oauth2_server.issue_tokens("frank@example.test", OAUTH2_CLIENT_ID)
    with httpx.Client() as http:
        oauth2_server.expire_access_tokens("erin@example.test")
        assert _introspect(http, oauth2_server, tokens["access_token"]) == {"active": False}
        assert oauth2_server.username_of(tokens["access_token"]) is None
        assert oauth2_server.username_of(other["access_token"]) == "frank@example.test"
        refreshed = _refresh(http, oauth2_server, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        access_token = refreshed.json()["access_token"]
        assert _introspect(http, oauth2_server, access_token)["active"] is True

        oauth2_server.revoke("erin@example.test")
        assert oauth2_server.username_of(access_token) is None
        revoked = _refresh(http, oauth2_server, refreshed.json()["refresh_token"])
        assert revoked.status_code == 400
        assert revoked.json() == {"error": "invalid_grant"}
        assert oauth2_server.username_of(other["access_token"]) == "frank@example.test"


def test_without_rotation_lifetime_revocation_and_reset() -> None:
    with OAuth2Server(access_token_lifetime=60, rotate_refresh_tokens=False) as server:
        server.register_client(*CONFIDENTIAL, redirect_uris=[REDIRECT_URI])
        tokens = server.issue_tokens("gina@example.test", OAUTH2_CLIENT_ID, scope="https://mail.google.com/")
        assert tokens["expires_in"] == 60
        server.set_access_token_lifetime(5)
        with httpx.Client() as http:
            for _ in range(2):  # the refresh token stays the same and keeps working
                response = _refresh(http, server, tokens["refresh_token"])
                assert response.status_code == 200, response.text
                assert "refresh_token" not in response.json()
                assert response.json()["expires_in"] == 5
                assert response.json()["scope"] == "https://mail.google.com/"

            revocation = {"token": tokens["refresh_token"]}
            assert http.post(server.revocation_url, data=revocation, auth=CONFIDENTIAL).status_code == 200
            assert _refresh(http, server, tokens["refresh_token"]).json()["error"] == "invalid_grant"
            assert server.username_of(tokens["access_token"]) is None

        server.reset()
        assert (server.refresh_count, server.refresh_attempts, server.token_requests) == (0, 0, [])
        assert server.issue_tokens("gina@example.test", OAUTH2_CLIENT_ID)["expires_in"] == 60


# -- Dovecot -----------------------------------------------------------------------------------


def test_dovecot_takes_access_tokens(
    oauth2_dovecot: DovecotServer, dovecot: DovecotServer, oauth2_server: OAuth2Server
) -> None:
    user = oauth2_dovecot.add_user()
    access_token = oauth2_server.issue_tokens(user, OAUTH2_CLIENT_ID)["access_token"]
    # The trusted CA file now holds both Dovecots' certificates.
    context = ssl.create_default_context(cafile=settings.imap_ca_file)
    with IMAPClient(oauth2_dovecot.host, oauth2_dovecot.ssl_port, ssl_context=context, timeout=10) as client:
        client.oauth2_login(user, access_token)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with IMAPClient(oauth2_dovecot.host, oauth2_dovecot.port, ssl=False, timeout=10) as client:
        client.oauthbearer_login(user, access_token)
        client.select_folder("INBOX")
    assert oauth2_server.introspections == 2
    with oauth2_dovecot.client(user) as client:  # passwords still work
        client.select_folder("INBOX")
    plain_user = dovecot.add_user()
    with IMAPClient(dovecot.host, dovecot.ssl_port, ssl_context=context, timeout=10) as client:
        client.login(plain_user, "secret")


def test_dovecot_refuses_bad_tokens(oauth2_dovecot: DovecotServer, oauth2_server: OAuth2Server) -> None:
    user, other = oauth2_dovecot.add_user(), oauth2_dovecot.add_user()
    others_token = oauth2_server.issue_tokens(other, OAUTH2_CLIENT_ID)["access_token"]
    expired = oauth2_server.issue_tokens(user, OAUTH2_CLIENT_ID)["access_token"]
    oauth2_server.expire_access_tokens(user)
    revoked = oauth2_server.issue_tokens(user, OAUTH2_CLIENT_ID)["access_token"]
    oauth2_server.revoke(user)
    attempts = [
        (IMAPClient.oauth2_login, others_token),
        (IMAPClient.oauth2_login, expired),
        (IMAPClient.oauthbearer_login, revoked),
        (IMAPClient.oauth2_login, "secret"),  # the password is no token
    ]
    for login, token in attempts:
        client = IMAPClient(oauth2_dovecot.host, oauth2_dovecot.port, ssl=False, timeout=10)
        with client, pytest.raises(LoginError):
            login(client, user, token)
    assert oauth2_server.introspections == len(attempts)  # every one was checked, none from a cache


# -- SMTP --------------------------------------------------------------------------------------


def _smtp(server: SmtpServer) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, timeout=10)
    smtp.starttls(context=ssl.create_default_context(cafile=str(server.ca_cert_path)))
    smtp.ehlo()
    return smtp


class _XOAuth2Client:
    """smtplib's authobject for XOAUTH2, keeping the server's challenges."""

    def __init__(self, user: str, token: str) -> None:
        self.initial = f"user={user}\x01auth=Bearer {token}\x01\x01"
        self.challenges: list[bytes] = []

    def answer(self, challenge: bytes | None = None) -> str:
        """The initial response; then the empty line that acknowledges an error challenge."""
        if challenge is None:
            return self.initial
        self.challenges.append(challenge)
        return ""


def test_smtp_takes_access_tokens(oauth2_smtp_server: SmtpServer, oauth2_server: OAuth2Server) -> None:
    user = "alice@example.test"
    access_token = oauth2_server.issue_tokens(user, OAUTH2_CLIENT_ID)["access_token"]
    with _smtp(oauth2_smtp_server) as smtp:
        assert set(smtp.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}
        assert smtp.auth("XOAUTH2", _XOAuth2Client(user, access_token).answer)[0] == 235
        smtp.sendmail(user, ["bob@example.test"], b"Subject: one\r\n\r\nbody\r\n")
    port = oauth2_smtp_server.port
    oauthbearer = f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {access_token}\x01\x01"
    with _smtp(oauth2_smtp_server) as smtp:
        assert smtp.auth("OAUTHBEARER", lambda challenge=None: oauthbearer)[0] == 235
        smtp.sendmail(user, ["bob@example.test"], b"Subject: two\r\n\r\nbody\r\n")
    with _smtp(oauth2_smtp_server) as smtp:
        smtp.login(*next(iter(SMTP_USERS.items())))
        smtp.sendmail(user, ["bob@example.test"], b"Subject: three\r\n\r\nbody\r\n")
    assert [message.login for message in oauth2_smtp_server.wait_for(3)] == [user] * 3
    assert oauth2_smtp_server.auth_attempts == [user] * 3


def test_smtp_refuses_bad_tokens(oauth2_smtp_server: SmtpServer, oauth2_server: OAuth2Server) -> None:
    others_token = oauth2_server.issue_tokens("mallory@example.test", OAUTH2_CLIENT_ID)["access_token"]
    for token in (others_token, "not-a-token"):
        client = _XOAuth2Client("alice@example.test", token)
        with _smtp(oauth2_smtp_server) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.auth("XOAUTH2", client.answer)
        assert refused.value.smtp_code == 535
        assert [json.loads(challenge) for challenge in client.challenges] == [
            {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
        ]
    assert oauth2_smtp_server.auth_attempts == ["alice@example.test"] * 2
    assert oauth2_smtp_server.messages == []


def test_smtp_without_oauth2_offers_no_bearer_mechanism(smtp_server: SmtpServer) -> None:
    with _smtp(smtp_server) as smtp:
        assert set(smtp.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
