"""HTTP methods on every REST route as DRF answers them: OPTIONS with its metadata, HEAD wherever GET
is, and a 405 whose ``Allow`` lists every method of the resource."""

from __future__ import annotations

import re

import pytest

ORDER = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
RENDERS = ["application/json"]
PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]


def operations(client) -> dict[str, list[str]]:  # noqa: ANN001
    """Each REST path of /openapi.json (parameters filled in) → its documented methods."""
    paths = client.get("/openapi.json").json()["paths"]
    return {
        re.sub(r"\{[^}]+\}", "1", path): [method.upper() for method in methods]
        for path, methods in paths.items()
        if path.startswith(("/api/", "/api-token-auth/"))
    }


def expected_allow(documented: list[str]) -> str:
    """DRF's Allow: the view's methods, HEAD with GET, and OPTIONS, in Django's order."""
    methods = {*documented, "OPTIONS"} | ({"HEAD"} if "GET" in documented else set())
    return ", ".join(method for method in ORDER if method in methods)


def test_every_rest_route_answers_options_and_a_405_with_its_allow(client, auth) -> None:  # noqa: ANN001
    routes = operations(client)
    assert len(routes) >= 30 and "/api/imap-servers/1/" in routes
    for path, documented in routes.items():
        allow = expected_allow(documented)
        options = client.options(path, headers=auth)
        assert options.status_code == 200, path
        assert options.headers["allow"] == allow, path
        body = options.json()
        assert set(body) == {"name", "description", "renders", "parses"}, path
        assert body["name"] and (body["renders"], body["parses"]) == (RENDERS, PARSES), path
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in documented:
                continue
            refused = client.request(method, path, headers=auth)
            assert refused.status_code == 405, (method, path)
            assert refused.json() == {"detail": f'Method "{method}" not allowed.'}
            assert refused.headers["allow"] == allow, (method, path)
        refused = client.request("TRACE", path, headers=auth)
        assert (refused.status_code, refused.headers["allow"]) == (405, allow), path


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_options_names_the_view_as_drf_does(client, auth, prefix) -> None:  # noqa: ANN001
    detail = client.options(f"{prefix}/imap-servers/1/", headers=auth)
    assert detail.headers["allow"] == "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"
    assert detail.json() == {
        "name": "Imap Server Instance",
        "description": "One IMAP account.",
        "renders": RENDERS,
        "parses": PARSES,
    }
    names = {
        path: client.options(prefix + path, headers=auth).json()["name"]
        for path in (
            "/imap-servers/",
            "/imap-servers/1/sync/",
            "/emails/",
            "/emails/threads/",
            "/emails/1/thread/",
            "/webhooks/1/rotate-secret/",
            "/tokens/",
        )
    }
    assert names == {
        "/imap-servers/": "Imap Server List",
        "/imap-servers/1/sync/": "Sync",
        "/emails/": "Email List",
        "/emails/threads/": "Threads",
        "/emails/1/thread/": "Thread",
        "/webhooks/1/rotate-secret/": "Rotate Secret",
        "/tokens/": "Token List",
    }


def test_options_needs_the_same_credentials_as_the_resource(client) -> None:  # noqa: ANN001
    refused = client.options("/api/imap-servers/1/")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Authentication credentials were not provided."}
    assert refused.headers["www-authenticate"] == "Token"
    login = client.options("/api-token-auth/")
    assert login.status_code == 200 and login.headers["allow"] == "POST, OPTIONS"
    assert login.json()["name"] == "Obtain Auth Token"


def test_head_answers_as_get_without_a_body(client, auth) -> None:  # noqa: ANN001
    client.post(
        "/api/imap-servers/",
        json={"name": "s", "host": "imap.example.com", "username": "u", "password": "p"},
        headers=auth,
    )
    for path in ("/api/imap-servers/", "/api/emails/statistics/", "/api/imap-servers/999/"):
        get, head = client.get(path, headers=auth), client.head(path, headers=auth)
        assert head.status_code == get.status_code and head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert client.head("/api/imap-servers/").status_code == 401


def test_a_cors_preflight_is_still_answered_by_cors(client) -> None:  # noqa: ANN001
    preflight = client.options(
        "/api/imap-servers/1/",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"},
    )
    assert preflight.status_code == 200 and "DELETE" in preflight.headers["access-control-allow-methods"]
