"""API tokens: list and revoke your own, expiry; usernames that cannot impersonate each other."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlmodel import select

from imap2api.cli import main
from imap2api.config import settings
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.errors import ValidationFailed
from imap2api.models import ApiToken


def _login(client, username: str, password: str) -> str:
    response = client.post("/api-token-auth/", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def test_list_and_revoke_own_tokens(client, make_user) -> None:
    username, password, first = make_user()
    second = _login(client, username, password)
    headers = {"Authorization": f"Token {second}"}
    listed = client.get("/api/tokens/", headers=headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    newest, oldest = body["results"]
    assert newest["prefix"] == second[:8] and oldest["prefix"] == first[:8]
    assert set(newest) == {"id", "name", "prefix", "created_at", "last_used_at", "expires_at"}
    assert newest["name"] == "token-auth" and newest["expires_at"] is None
    assert newest["created_at"].endswith("Z")
    assert first not in listed.text and second not in listed.text  # keys are never shown again

    assert client.delete(f"/api/tokens/{oldest['id']}/", headers=headers).status_code == 204
    assert client.get("/api/imap-servers/", headers={"Authorization": f"Token {first}"}).status_code == 401
    assert client.get("/api/tokens/", headers=headers).json()["count"] == 1
    # Revoking the token in use ends it too.
    assert client.delete(f"/api/tokens/{newest['id']}/", headers=headers).status_code == 204
    assert client.get("/api/tokens/", headers=headers).status_code == 401


def test_another_users_token_is_not_found(client, make_user) -> None:
    _, _, mine = make_user()
    _, _, theirs = make_user()
    listed = client.get("/api/tokens/", headers={"Authorization": f"Token {theirs}"}).json()
    their_id = listed["results"][0]["id"]
    mine_headers = {"Authorization": f"Token {mine}"}
    assert client.delete(f"/api/tokens/{their_id}/", headers=mine_headers).status_code == 404
    revoke = client.post(
        "/graphql",
        headers=mine_headers,
        json={"query": "mutation($id: ID!) { revokeApiToken(id: $id) }", "variables": {"id": their_id}},
    )
    assert revoke.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert client.get("/api/imap-servers/", headers={"Authorization": f"Token {theirs}"}).status_code == 200
    assert client.get("/api/tokens/").status_code == 401


def test_graphql_lists_tokens(client, make_user) -> None:
    _, _, token = make_user()
    response = client.post(
        "/graphql",
        headers={"Authorization": f"Token {token}"},
        json={"query": "{ apiTokens { count results { id prefix createdAt lastUsedAt expiresAt } } }"},
    )
    page = response.json()["data"]["apiTokens"]
    assert page["count"] == 1 and page["results"][0]["prefix"] == token[:8]


def test_tokens_expire_after_the_configured_lifetime(client, make_user, monkeypatch) -> None:
    _, _, token = make_user()
    headers = {"Authorization": f"Token {token}"}
    monkeypatch.setattr(settings, "token_ttl_hours", 24.0)
    listed = client.get("/api/tokens/", headers=headers).json()["results"][0]
    assert listed["expires_at"] is not None
    with session_scope() as session:
        row = session.exec(select(ApiToken).where(ApiToken.key_prefix == token[:8])).one()
        row.created_at = row.created_at - timedelta(hours=25)
        session.add(row)
    response = client.get("/api/imap-servers/", headers=headers)
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}
    monkeypatch.setattr(settings, "token_ttl_hours", 0.0)  # 0: tokens never expire
    assert client.get("/api/imap-servers/", headers=headers).status_code == 200


def _fullwidth(name: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in name)


@pytest.mark.parametrize(
    "lookalike",
    [_fullwidth, str.capitalize, str.upper, lambda name: f" {name} "],
    ids=["fullwidth", "capitalized", "upper", "padded"],
)
def test_usernames_are_unique_ignoring_width_and_case(database, lookalike) -> None:
    name = "alice" + secrets.token_hex(3)
    with session_scope() as session:
        crud_users.create_user(session, username=name, password="pw")
    with pytest.raises(ValidationFailed) as taken, session_scope() as session:
        crud_users.create_user(session, username=lookalike(name), password="pw")
    assert taken.value.fields == {"username": ["A user with that username already exists."]}


def test_fullwidth_names_are_stored_and_logged_in_normalised(client) -> None:
    name = "bob" + secrets.token_hex(3)
    fullwidth = _fullwidth(name)
    with session_scope() as session:
        assert crud_users.create_user(session, username=fullwidth, password="pw").username == name
    assert _login(client, fullwidth, "pw")
    assert _login(client, name, "pw")


def test_createuser_refuses_a_case_variant(database, tmp_path) -> None:
    name = "carol" + secrets.token_hex(3)
    runner = CliRunner()
    assert runner.invoke(main, ["createuser", name, "--password", "password-1"]).exit_code == 0
    refused = runner.invoke(main, ["createuser", name.upper(), "--password", "password-1"])
    assert refused.exit_code != 0 and "already exists" in refused.output
