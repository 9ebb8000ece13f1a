"""Token authentication on REST and GraphQL, exactly as apidoc.md and DRF answer."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from imap2api.db import session_scope
from imap2api.models import ApiToken


def test_token_auth_json_and_form(client, make_user) -> None:
    username, password, _ = make_user()
    for kwargs in (
        {"json": {"username": username, "password": password}},
        {"data": {"username": username, "password": password}},
    ):
        response = client.post("/api-token-auth/", **kwargs)
        assert response.status_code == 200
        token = response.json()["token"]
        assert re.fullmatch(r"[0-9a-f]{40}", token)
        me = client.post(
            "/graphql", json={"query": "{ me { username } }"}, headers={"Authorization": f"Token {token}"}
        )
        assert me.json() == {"data": {"me": {"username": username}}}


def test_tokens_are_stored_hashed(client, make_user) -> None:
    username, password, _ = make_user()
    token = client.post("/api-token-auth/", json={"username": username, "password": password}).json()["token"]
    with session_scope() as session:
        hashes = set(session.exec(select(ApiToken.key_hash)))
    assert token not in hashes
    assert all(len(value) == 64 for value in hashes)


def test_wrong_credentials(client, make_user) -> None:
    username, _, _ = make_user()
    for body in ({"username": username, "password": "wrong"}, {"username": "nobody-here", "password": "x"}):
        response = client.post("/api-token-auth/", json=body)
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"password": "x"}, {"username": ["This field is required."]}),
        ({"username": "x"}, {"password": ["This field is required."]}),
        ({}, {"username": ["This field is required."], "password": ["This field is required."]}),
        ({"username": "", "password": "x"}, {"username": ["This field may not be blank."]}),
    ],
)
def test_missing_fields(client, body, expected) -> None:
    response = client.post("/api-token-auth/", json=body)
    assert response.status_code == 400
    assert response.json() == expected


def test_malformed_json_is_a_400(client) -> None:
    response = client.post("/api-token-auth/", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_rest_needs_a_token(client, prefix) -> None:
    response = client.get(f"{prefix}/imap-servers/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["WWW-Authenticate"] == "Token"

    response = client.get(f"{prefix}/imap-servers/", headers={"Authorization": "Token " + "0" * 40})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert response.headers["WWW-Authenticate"] == "Token"


def test_rest_accepts_a_valid_token(client, auth) -> None:
    response = client.get("/api/imap-servers/", headers=auth)
    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_graphql_token_auth_mutation_and_header(client, make_user) -> None:
    username, password, _ = make_user()
    mutation = (
        "mutation($u: String!, $p: String!) {"
        " tokenAuth(username: $u, password: $p) { token user { username } } }"
    )
    result = client.post(
        "/graphql", json={"query": mutation, "variables": {"u": username, "p": password}}
    ).json()
    token = result["data"]["tokenAuth"]["token"]
    assert result["data"]["tokenAuth"]["user"]["username"] == username

    ok = client.post(
        "/graphql", json={"query": "{ me { username } }"}, headers={"Authorization": f"Token {token}"}
    )
    assert ok.json()["data"]["me"]["username"] == username

    anonymous = client.post("/graphql", json={"query": "{ me { username } }"}).json()
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert anonymous["errors"][0]["message"] == "Authentication credentials were not provided."

    bad = client.post(
        "/graphql", json={"query": "{ me { username } }"}, headers={"Authorization": "Token nope"}
    ).json()
    assert bad["errors"][0]["message"] == "Invalid token."

    wrong = client.post("/graphql", json={"query": mutation, "variables": {"u": username, "p": "no"}}).json()
    assert wrong["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"
    assert wrong["errors"][0]["extensions"]["fields"] == {
        "nonFieldErrors": ["Unable to log in with provided credentials."]
    }


def test_several_tokens_per_user(client, make_user) -> None:
    username, password, first = make_user()
    second = client.post("/api-token-auth/", json={"username": username, "password": password}).json()[
        "token"
    ]
    assert first != second
    for key in (first, second):
        assert client.get("/api/imap-servers/", headers={"Authorization": f"Token {key}"}).status_code == 200


def test_graphiql_and_docs_are_served(client) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api-token-auth/" in paths and "/api/imap-servers/" in paths
    assert not any(path.startswith("/api/v1/") for path in paths)  # listed once; /api/v1/ still answers
