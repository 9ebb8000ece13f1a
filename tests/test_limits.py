"""Rate limits, body-size limits and CORS, on REST and GraphQL alike."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from imap2api.app import create_app
from imap2api.config import settings


@pytest.fixture()
def limited_app(database, monkeypatch):
    """The app with small budgets: 5 requests per user, 3 per anonymous IP, 2 KB bodies."""
    monkeypatch.setattr(settings, "rate_limit_user", "5/minute")
    monkeypatch.setattr(settings, "rate_limit_anon", "3/minute")
    monkeypatch.setattr(settings, "max_request_bytes", 2048)
    with TestClient(create_app()) as client:
        yield client


def test_user_budget_headers_and_429(limited_app, auth) -> None:
    remaining = []
    for _ in range(5):
        response = limited_app.get("/api/imap-servers/", headers=auth)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    # GraphQL spends the same budget.
    throttled = limited_app.post("/graphql", json={"query": "{ me { username } }"}, headers=auth)
    assert throttled.status_code == 429
    wait = int(throttled.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert throttled.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}


def test_anonymous_budget_is_per_ip_and_separate(limited_app, auth) -> None:
    for _ in range(3):
        assert limited_app.get("/api/emails/").status_code == 401
    response = limited_app.post("/api-token-auth/", json={"username": "x", "password": "y"})
    assert response.status_code == 429 and response.headers["X-RateLimit-Limit"] == "3"
    assert limited_app.get("/api/imap-servers/", headers=auth).status_code == 200


def test_bodies_above_the_limit_are_413(limited_app, auth) -> None:
    response = limited_app.post(
        "/api/imap-servers/",
        content=b"{" + b" " * 4096 + b"}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and response.json() == {"detail": "Request body is too large."}

    def chunks():
        for _ in range(4):
            yield b" " * 1024

    streamed = limited_app.post(
        "/api/imap-servers/", content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_cors(client, auth) -> None:
    preflight = client.options(
        "/api/emails/",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://app.example")
    response = client.get("/api/emails/", headers={**auth, "Origin": "https://app.example"})
    assert "x-ratelimit-remaining" in response.headers["access-control-expose-headers"].lower()


def test_cors_origins_from_settings(database, monkeypatch) -> None:
    monkeypatch.setattr(settings, "cors_origins", ["https://allowed.example"])
    with TestClient(create_app()) as client:
        ok = client.get("/docs", headers={"Origin": "https://allowed.example"})
        denied = client.get("/docs", headers={"Origin": "https://evil.example"})
    assert ok.headers.get("access-control-allow-origin") == "https://allowed.example"
    assert "access-control-allow-origin" not in denied.headers
