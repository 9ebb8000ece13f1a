"""``GET /``: the entry points and how to create the first user, as JSON for programs and as a page for
browsers (no script, its style allowed by hash), spending the request budget like any other request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imap2api import __version__
from imap2api.app import create_app
from imap2api.cli import main
from imap2api.landing import wants_html
from imap2api.security_headers import script_hash
from tests.support.browser import offline_browser, require_browser, running_app

# The page reads no table: one database is enough.
sqlite_only = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

# What Chromium sends for a page it navigates to.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
)
LINKS = ("graphql", "docs", "openapi", "admin", "token", "health")


@pytest.fixture()
def server(database: str) -> Iterator[str]:
    """The app under uvicorn (no worker needed here); yields its base URL."""
    with running_app(run_worker=False) as url:
        yield url


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
@sqlite_only
def test_programs_get_json_with_links_that_answer(client, accept: str | None) -> None:  # noqa: ANN001
    headers = {"Accept": accept} if accept else {}
    answer = client.get("/", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert "Accept" in answer.headers["vary"]
    body = answer.json()
    assert (body["name"], body["version"]) == ("imap2api", __version__)
    assert body["links"] == {
        "graphql": "/graphql",
        "docs": "/docs",
        "openapi": "/openapi.json",
        "admin": "/admin",
        "token": "/api-token-auth/",
        "health": "/healthz",
    }
    # Each link leads somewhere: a page, a redirect to the admin's login, or (GET on a POST endpoint) 405.
    statuses = {
        name: client.get(url, follow_redirects=False).status_code for name, url in body["links"].items()
    }
    assert statuses == {name: 200 for name in LINKS} | {"admin": 307, "token": 405}
    assert body["rest_api"] == {"base": "/api/", "also_under": "/api/v1/"}
    steps = body["getting_started"]
    assert (
        steps["create_user"].startswith("imap2api createuser ")
        and ".venv/bin/imap2api" in steps["create_user_note"]
    )
    assert steps["obtain_token"].startswith("POST /api-token-auth/")
    assert steps["authenticate"] == "Authorization: Token <key>"


@sqlite_only
def test_the_commands_it_names_exist(client) -> None:  # noqa: ANN001
    command = client.get("/").json()["getting_started"]["create_user"].split()
    assert command[1] in main.commands and "--admin" in [
        param.opts[0] for param in main.commands[command[1]].params
    ]


@sqlite_only
def test_browsers_get_a_page_without_scripts_under_a_strict_policy(client) -> None:  # noqa: ANN001
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for href in ("/graphql", "/docs", "/openapi.json", "/admin"):
        assert f'href="{href}"' in text, href
    assert __version__ in text
    assert "imap2api createuser NAME --admin" in text and ".venv/bin/imap2api" in text
    assert "/api-token-auth/" in text and "Authorization: Token &lt;key&gt;" in text
    assert "<script" not in text
    policy = dict(
        (name, sources)
        for name, *sources in (part.split() for part in page.headers["content-security-policy"].split(";"))
    )
    assert policy["default-src"] == ["'none'"] and "script-src" not in policy
    assert policy["frame-ancestors"] == ["'none'"] and page.headers["x-frame-options"] == "DENY"
    styles = re.findall(r"<style>(.*?)</style>", text, re.DOTALL)
    assert styles and policy["style-src"] == [script_hash(source) for source in styles]
    assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("text/*", True),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.4, application/json;q=0.5", False),
        ("text/html, application/json", False),  # a tie: JSON
        ("*/*", False),
        ("", False),
        (None, False),
        ("text/html;q=nonsense, */*;q=0.1", False),
    ],
)
def test_negotiation(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html


@sqlite_only
def test_it_spends_the_request_budget(client) -> None:  # noqa: ANN001
    first, second = client.get("/"), client.get("/", headers={"Accept": "text/html"})
    remaining = [int(answer.headers["x-ratelimit-remaining"]) for answer in (first, second)]
    assert remaining[1] == remaining[0] - 1


@sqlite_only
def test_links_follow_the_root_path(database: str) -> None:
    with TestClient(create_app(run_worker=False), root_path="/mail") as client:
        body = client.get("/mail/").json()
        page = client.get("/mail/", headers={"Accept": "text/html"}).text
    assert body["links"]["docs"] == "/mail/docs" and body["rest_api"]["base"] == "/mail/api/"
    assert 'href="/mail/graphql"' in page and "/mail/api-token-auth/" in page


@sqlite_only
def test_head_answers_without_a_body(client) -> None:  # noqa: ANN001
    answer = client.head("/")
    assert answer.status_code == 200 and answer.content == b""


@sqlite_only
def test_the_page_renders_in_chromium_and_leads_to_the_reference(server: str, tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        page.goto(f"{server}/", wait_until="load")
        expect(page.locator("h1")).to_contain_text("imap2api")
        # The inline style applied: the policy's hash matches it (a refused style would leave the default).
        assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
        page.locator("a", has_text="REST reference").click()
        page.wait_for_url(f"{server}/docs")
    assert browser.router.blocked == [], f"the page tried to reach the internet: {browser.router.blocked}"
    assert browser.problems == [], browser.problems
    assert f"{server}/favicon.ico" not in browser.router.requested
