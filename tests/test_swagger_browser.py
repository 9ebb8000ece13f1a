"""Swagger UI at /docs sends the API token: the OpenAPI document declares the ``Token`` scheme on every
operation that needs it, so "Authorize" then "Try it out" answers 200 instead of 401.

The browser part drives a real headless Chromium against a real server that it alone may reach (see
tests/support/browser.py); it needs Debian's ``chromium`` and ``playwright``: skipped without them
locally, failed without them when ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imap2api.graphiql import missing_assets
from tests.support.browser import offline_browser, require, require_browser, running_app

SCHEME = {"Token": []}


@pytest.fixture()
def server(database: str) -> Iterator[str]:
    """The app under uvicorn (no worker needed here); yields its base URL."""
    with running_app(run_worker=False) as url:
        yield url


def test_the_document_declares_the_token_scheme_where_it_is_needed(client, auth) -> None:  # noqa: ANN001
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["Token"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Token <key>" in scheme["description"]
    operations = {
        (method, path): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    # Logging in needs no token; every operation under /api/ does (each answers 401 without one).
    assert "security" not in operations[("post", "/api-token-auth/")]
    api = {key: operation for key, operation in operations.items() if key[1].startswith("/api/")}
    assert len(api) >= 30
    assert {key: operation.get("security") for key, operation in api.items()} == {
        key: [SCHEME] for key in api
    }
    assert client.get("/api/tokens/").status_code == 401
    assert client.get("/api/tokens/", headers=auth).status_code == 200


def test_api_v1_is_served_but_listed_once_under_api(client, auth) -> None:  # noqa: ANN001
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/imap-servers/" in paths
    assert [path for path in paths if path.startswith("/api/v1/")] == []
    assert client.get("/api/v1/imap-servers/", headers=auth).status_code == 200


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_authorize_then_try_it_out_answers_200(server: str, make_user, tmp_path: Path) -> None:  # noqa: ANN001
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    require(not missing_assets(), f"Swagger UI assets are not fetched: {missing_assets()} (make install)")
    _, _, token = make_user()
    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        sent: list[str | None] = []
        page.on(
            "request",
            lambda request: (
                request.url.endswith("/api/tokens/") and sent.append(request.headers.get("authorization"))
            ),
        )
        page.goto(f"{server}/docs", wait_until="load")
        operation = page.locator(
            ".opblock-get", has=page.locator(".opblock-summary-path[data-path='/api/tokens/']")
        ).first
        operation.locator(".opblock-summary").click()
        operation.locator(".try-out__btn").click()
        status = operation.locator(".live-responses-table .response .response-col_status")

        # Without a token: the 401 that every "Try it out" used to get.
        operation.locator(".execute").click()
        expect(status).to_have_text("401", timeout=15_000)

        page.locator(".swagger-ui .auth-wrapper .authorize").click()
        dialog = page.locator(".modal-ux")
        dialog.locator("input#api_key_value").fill(f"Token {token}")
        dialog.locator("button.authorize").click()
        dialog.locator("button.btn-done").click()
        # The operation's padlock now shows it will send the token.
        expect(operation.locator(".authorization__btn")).to_have_attribute(
            "aria-label", "authorization button locked"
        )

        operation.locator(".btn-clear").click()
        operation.locator(".execute").click()
        expect(status).to_have_text("200", timeout=15_000)
        expect(
            operation.locator(".live-responses-table .response .response-col_description")
        ).to_contain_text('"count"')

    assert sent == [None, f"Token {token}"]
    assert browser.router.blocked == [], f"the page tried to reach the internet: {browser.router.blocked}"
    # Chromium logs the deliberate 401 above as a console error; nothing else may go wrong.
    unauthorized = (
        "console: Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    )
    assert browser.problems == [unauthorized], browser.problems
