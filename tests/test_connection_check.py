"""The connection test (``POST /api/imap-servers/test/``, ``testImapServer``) against the real Dovecot.

It takes a new server's settings under the same rules (400 when invalid), logs in as a sync would and
lists the folders; a failed login is a 200 with ``ok`` false and the sync's code. Nothing is stored,
anonymous callers get nothing, a non-IMAP service's words are never repeated, and it answers in time.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from imap2api.app import create_app
from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.models import Event, ImapServer, SyncRun
from tests.conftest import OAUTH2_CLIENT_ID
from tests.support.banner import BannerServer
from tests.support.hung import HungImapServer

URL = "/api/imap-servers/test/"
TEST = """mutation($input: ImapServerInput!) {
  testImapServer(input: $input) { ok folders capabilities error code } }"""


def settings_of(dovecot, mail_user: str, **overrides) -> dict:  # noqa: ANN001
    """A new server's settings for the Dovecot fixture (STARTTLS on its plain port)."""
    return {
        "name": "Work",
        "host": dovecot.host,
        "port": dovecot.port,
        "username": mail_user,
        "password": "secret",
        "tls_mode": "starttls",
        **overrides,
    }


def stored() -> tuple[int, int, int]:
    """How many servers, runs and events the database holds."""
    with session_scope() as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(model)).one()
            for model in (ImapServer, SyncRun, Event)
        )


def test_a_working_login_lists_the_folders_and_stores_nothing(client, auth, dovecot, user) -> None:  # noqa: ANN001
    before = stored()
    response = client.post(URL, json=settings_of(dovecot, user), headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True and set(body) == {"ok", "folders", "capabilities"}
    assert {"INBOX", "Sent", "Trash", "Junk", "Drafts", "Archive"} <= set(body["folders"])
    assert "IMAP4REV1" in {name.upper() for name in body["capabilities"]}
    assert stored() == before
    assert client.get("/api/imap-servers/", headers=auth).json()["count"] == 0


def test_implicit_tls_works_too(client, auth, dovecot, user) -> None:  # noqa: ANN001
    response = client.post(
        URL, json=settings_of(dovecot, user, port=dovecot.ssl_port, tls_mode="ssl"), headers=auth
    )
    assert response.status_code == 200 and response.json()["ok"] is True, response.text


def test_a_wrong_password_is_ok_false_with_the_sync_code(client, auth, dovecot, user) -> None:  # noqa: ANN001
    before = stored()
    response = client.post(URL, json=settings_of(dovecot, user, password="wrong"), headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["code"] == "IMAP_AUTH_FAILED" and set(body) == {"ok", "error", "code"}
    assert "wrong" not in body["error"]
    assert stored() == before


def test_tls_to_a_plain_port_fails_as_a_tls_or_protocol_error(client, auth, dovecot, user) -> None:  # noqa: ANN001
    body = client.post(URL, json=settings_of(dovecot, user, tls_mode="ssl"), headers=auth).json()
    assert body["ok"] is False and body["code"] in ("IMAP_TLS_FAILED", "IMAP_PROTOCOL_ERROR")


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"host": "imaps://imap.example.com"}, {"host"}),
        ({"password": ""}, {"password"}),
        ({"sync_limit_type": "days"}, {"sync_limit_value"}),
        ({"tls_mode": "tls"}, {"tls_mode"}),
    ],
)
def test_invalid_settings_are_a_400_as_on_create(client, auth, dovecot, user, change, errors) -> None:  # noqa: ANN001
    body = settings_of(dovecot, user, **change)
    tested = client.post(URL, json=body, headers=auth)
    created = client.post("/api/imap-servers/", json=body, headers=auth)
    assert tested.status_code == created.status_code == 400
    assert tested.json() == created.json() and set(tested.json()) == errors


def test_a_missing_field_is_a_400(client, auth) -> None:  # noqa: ANN001
    response = client.post(URL, json={"host": "imap.example.com"}, headers=auth)
    assert response.status_code == 400
    assert {"name", "username", "password"} <= set(response.json())


def test_the_graphql_mutation_answers_the_same(client, auth, dovecot, user) -> None:  # noqa: ANN001
    good = {
        "name": "Work",
        "host": dovecot.host,
        "port": dovecot.port,
        "username": user,
        "password": "secret",
    }
    answer = client.post(
        "/graphql",
        json={"query": TEST, "variables": {"input": {**good, "tlsMode": "STARTTLS"}}},
        headers=auth,
    ).json()
    result = answer["data"]["testImapServer"]
    assert result["ok"] is True and "INBOX" in result["folders"] and result["error"] is None
    refused = client.post(
        "/graphql",
        json={"query": TEST, "variables": {"input": {**good, "tlsMode": "STARTTLS", "password": "no"}}},
        headers=auth,
    ).json()["data"]["testImapServer"]
    assert refused == {
        "ok": False,
        "folders": [],
        "capabilities": [],
        "error": refused["error"],
        "code": "IMAP_AUTH_FAILED",
    }
    invalid = client.post(
        "/graphql", json={"query": TEST, "variables": {"input": {**good, "port": 0}}}, headers=auth
    ).json()
    assert invalid["data"] is None and invalid["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"


def test_anonymous_callers_get_a_401_and_no_connection(client) -> None:  # noqa: ANN001
    with BannerServer(b"* OK IMAP ready\r\n") as service:
        body = {"name": "x", "host": service.host, "port": service.port, "username": "u", "password": "p"}
        assert client.post(URL, json=body).status_code == 401
        assert client.post(URL, json=body, headers={"Authorization": "Token nope"}).status_code == 401
        answer = client.post(
            "/graphql", json={"query": TEST, "variables": {"input": {**body, "tlsMode": "NONE"}}}
        ).json()
        assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert service.connections == 0


def test_what_another_service_says_is_never_repeated(client, auth) -> None:  # noqa: ANN001
    banner = b"SSH-2.0-OpenSSH_9.6 internal-build-secret\r\n"
    with BannerServer(banner) as service:
        body = {
            "name": "x",
            "host": service.host,
            "port": service.port,
            "username": "u",
            "password": "p",
            "tls_mode": "none",
        }
        answer = client.post(URL, json=body, headers=auth)
    assert answer.status_code == 200
    assert answer.json()["ok"] is False and answer.json()["code"] == "IMAP_PROTOCOL_ERROR"
    assert "SSH" not in answer.text and "secret" not in answer.text


def test_a_silent_server_is_answered_in_time(client, auth, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(settings, "imap_timeout_seconds", 1.0)
    with HungImapServer("greeting") as hung:
        body = {"name": "x", "host": hung.host, "port": hung.port, "username": "u", "password": "p"}
        started = time.monotonic()
        answer = client.post(URL, json={**body, "tls_mode": "none"}, headers=auth)
        elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["code"] == "IMAP_TIMEOUT"
    assert elapsed < 5


def test_the_whole_test_stays_within_the_request_timeout(client, auth, monkeypatch) -> None:  # noqa: ANN001
    # Each read may take the IMAP timeout, but the test as a whole answers before the request's bound.
    monkeypatch.setattr(settings, "imap_timeout_seconds", 30.0)
    monkeypatch.setattr(settings, "request_timeout_seconds", 3.0)
    with HungImapServer("connect") as hung:
        body = {"name": "x", "host": hung.host, "port": hung.port, "username": "u", "password": "p"}
        started = time.monotonic()
        answer = client.post(URL, json={**body, "tls_mode": "none"}, headers=auth)
        elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.json()["code"] == "IMAP_TIMEOUT", answer.text
    assert elapsed < 3


def test_an_oauth2_server_needs_a_token_to_be_tested(client, auth) -> None:  # noqa: ANN001
    body = {"name": "x", "host": "imap.gmail.com", "username": "someone@gmail.com", "auth_type": "oauth2"}
    answer = client.post(URL, json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is False and answer.json()["code"] == "OAUTH2_NOT_CONNECTED"


def test_the_route_is_documented_and_test_is_no_server(client, auth) -> None:  # noqa: ANN001
    # "test" is no id: the other methods are refused, not taken by the /{server_id}/ routes.
    for method in ("GET", "PUT", "PATCH", "DELETE", "HEAD"):
        refused = client.request(method, URL, headers=auth)
        assert (refused.status_code, refused.headers["allow"]) == (405, "POST, OPTIONS"), method
    assert client.options(URL, headers=auth).headers["allow"] == "POST, OPTIONS"
    assert "/api/imap-servers/test/" in client.get("/openapi.json").json()["paths"]


def test_tests_spend_the_callers_rate_limit(database, monkeypatch, auth) -> None:  # noqa: ANN001
    monkeypatch.setattr(settings, "rate_limit_user", "2/minute")
    with BannerServer(b"* BYE\r\n") as service, TestClient(create_app()) as limited:
        body = {"name": "x", "host": service.host, "port": service.port, "username": "u", "password": "p"}
        for _ in range(2):
            assert limited.post(URL, json={**body, "tls_mode": "none"}, headers=auth).status_code == 200
        assert limited.post(URL, json={**body, "tls_mode": "none"}, headers=auth).status_code == 429
        assert service.connections == 2


# --- the same REST module: a sync's answer says what is true -------------------------------------


@pytest.mark.parametrize(
    ("status", "message"), [("queued", "Email sync queued"), ("running", "Email sync already running")]
)
def test_asking_again_for_a_sync_under_way_says_what_it_is_doing(client, mirror, status, message) -> None:  # noqa: ANN001
    with session_scope() as session:
        run, _ = crud_runs.start_run(
            session, server=session.get(ImapServer, mirror.server_id), trigger="manual"
        )
        crud_runs.update_run(session, run_id=run.id, status=status)
        # Running: a worker holds the lease (a lapsed one would fail the run rather than join it).
        crud_runs.acquire_lease(session, server_id=mirror.server_id, holder="another-worker", seconds=300)
    answer = client.post(f"/api/imap-servers/{mirror.server_id}/sync/?wait=false", headers=mirror.headers)
    assert answer.status_code == 202
    assert answer.json()["status"] == status and answer.json()["message"] == message
    assert answer.json()["sync_run"] == run.id


def test_an_oauth2_server_is_tested_with_the_given_access_token(
    client,
    auth,
    oauth2_dovecot,
    oauth2_server,
    monkeypatch,  # noqa: ANN001
) -> None:
    monkeypatch.setattr(settings, "oauth2_allow_private", True)  # the local server's http token URL
    mail_user = oauth2_dovecot.add_user()
    issued = oauth2_server.issue_tokens(mail_user, OAUTH2_CLIENT_ID)
    body = {
        "name": "x",
        "host": oauth2_dovecot.host,
        "port": oauth2_dovecot.port,
        "tls_mode": "starttls",
        "username": mail_user,
        "auth_type": "oauth2",
        "oauth2_provider": "custom",
        "oauth2_token_url": oauth2_server.token_url,
        "oauth2_client_id": OAUTH2_CLIENT_ID,
    }
    before = stored()
    good = client.post(URL, json={**body, "oauth2_access_token": issued["access_token"]}, headers=auth)
    assert good.status_code == 200 and good.json()["ok"] is True, good.text
    assert "INBOX" in good.json()["folders"]
    refused = client.post(URL, json={**body, "oauth2_access_token": "not-a-token"}, headers=auth).json()
    assert refused["ok"] is False and refused["code"] == "IMAP_AUTH_FAILED"
    assert "not-a-token" not in refused["error"]
    assert stored() == before
