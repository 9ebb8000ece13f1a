"""The GraphiQL explorer works without internet access: a real headless Chromium against a real server.

The browser may reach nothing but the loopback server: every other request is recorded and aborted
by Playwright, and Chromium is pointed at a dead proxy, which loopback bypasses, so nothing else
could load even on a machine with a route out. The page must render from local assets, and a
query typed into it, with the token typed into its token field, must return data.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` package (test extra):
skipped without them locally, failed without them when ``CI=true``.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import imap2api.graphiql as graphiql
from imap2api.graphiql import fetch_assets, missing_assets
from tests.support.browser import offline_browser, require, require_browser, running_app


@pytest.fixture()
def server(database: str) -> Iterator[str]:
    """The app under uvicorn (no worker needed here); yields its base URL."""
    with running_app(run_worker=False) as url:
        yield url


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_graphiql_runs_a_query_without_internet(server: str, make_user, tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    require(not missing_assets(), f"GraphiQL assets are not fetched: {missing_assets()} (make install)")

    username, _, token = make_user()
    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        page.goto(f"{server}/graphql", wait_until="load")
        # Rendered by GraphiQL itself, from the local assets.
        expect(page.locator(".graphiql-container .graphiql-query-editor .CodeMirror")).to_be_visible()
        expect(page.locator(".graphiql-execute-button")).to_be_visible()

        page.locator("#imap2api-token").press_sequentially(token)
        editor = page.locator(".graphiql-query-editor .CodeMirror")
        editor.click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.press("Delete")
        # Typed as text input (CodeMirror would otherwise auto-close each brace typed key by key).
        page.keyboard.insert_text("{ me { username } }")
        expect(editor).to_contain_text("{ me { username } }")
        page.locator(".graphiql-execute-button").click()

        response = page.locator(".graphiql-response")
        expect(response).to_contain_text(f'"username": "{username}"', timeout=15_000)
        page.screenshot(path=str(tmp_path / "graphiql.png"))
        print(f"screenshot: {tmp_path / 'graphiql.png'}")

        # The token is kept in this browser for the next visit.
        stored = page.evaluate("localStorage.getItem('imap2api.graphiql.token')")
        assert stored == token

    assert browser.router.blocked == [], f"the page tried to reach the internet: {browser.router.blocked}"
    assert browser.problems == [], browser.problems
    assert f"{server}/graphql" in browser.router.requested
    requested = browser.router.requested
    assert any("/static/graphiql/graphiql-" in url for url in requested), requested


def test_page_loads_only_local_assets_under_a_strict_policy(client) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "unpkg.com" not in page.text and "jsdelivr" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    if not missing_assets():
        for asset in ("react-18.2.0.production.min.js", "graphiql-3.8.3.min.js", "graphiql-3.8.3.min.css"):
            assert f'"/static/graphiql/{asset}"' in page.text
            assert client.get(f"/static/graphiql/{asset}").status_code == 200
    # GraphQL over GET is unchanged.
    answer = client.get("/graphql", params={"query": "{ __typename }"})
    assert answer.json() == {"data": {"__typename": "Query"}}


def test_missing_assets_are_explained_and_the_server_still_runs(client, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(graphiql, "STATIC_DIR", tmp_path / "absent")
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "GraphiQL assets are not installed" in page.text and "make install" in page.text
    assert "<script" not in page.text
    assert client.get("/graphql", params={"query": "{ __typename }"}).status_code == 200


def test_fetch_rejects_a_tarball_that_does_not_match_its_pin(monkeypatch, tmp_path: Path) -> None:
    forged = io.BytesIO()
    with tarfile.open(fileobj=forged, mode="w:gz") as archive:
        payload = b"alert('not react')"
        info = tarfile.TarInfo("package/umd/react.production.min.js")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))

    class Response(io.BytesIO):
        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *_: object) -> None:
            pass

    monkeypatch.setattr(fetch_assets.urllib.request, "urlopen", lambda *a, **k: Response(forged.getvalue()))
    with pytest.raises(fetch_assets.FetchError, match="integrity mismatch"):
        fetch_assets.fetch(tmp_path / "static", log=lambda _: None)
    assert not (tmp_path / "static").exists()


def test_fetch_is_skipped_when_the_assets_are_in_place(monkeypatch, tmp_path: Path) -> None:
    require(not fetch_assets.missing(), "GraphiQL assets are not fetched (make install)")
    copy = tmp_path / "static"
    shutil.copytree(fetch_assets.STATIC_DIR, copy)

    def offline(*_: object, **__: object) -> None:
        raise AssertionError("downloaded although every file is in place")

    monkeypatch.setattr(fetch_assets.urllib.request, "urlopen", offline)
    assert fetch_assets.fetch(copy, log=lambda _: None) is False


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_rest_reference_page_renders_without_internet(server: str, tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    require(not missing_assets(), f"assets are not fetched: {missing_assets()} (make install)")
    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        page.goto(f"{server}/docs", wait_until="load")
        # Swagger UI lists the operations it read from /openapi.json.
        operation = page.locator(".swagger-ui .opblock-summary-path", has_text="/api/emails/")
        expect(operation.first).to_be_visible()
    assert browser.router.blocked == [], f"the page tried to reach the internet: {browser.router.blocked}"
    assert browser.problems == [], browser.problems
