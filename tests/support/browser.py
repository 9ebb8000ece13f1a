"""A real server and a real browser for the browser tests: uvicorn in a thread, Debian's Chromium.

Chromium is pointed at a dead proxy (loopback bypasses it), and ``offline_router`` aborts every
request that is not for loopback, so a page could not load anything from the internet even on a
machine with a route out. Without Chromium or Playwright the tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from imap2api.app import create_app
from tests.support.services import in_ci

CHROMIUM = "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No route out: whatever is not loopback goes to a proxy that does not exist.
    "--proxy-server=http://127.0.0.1:9",
]


def require(condition: bool, message: str) -> None:
    """Skip the test when ``condition`` is false, or fail it in CI."""
    if condition:
        return
    if in_ci():
        pytest.fail(message + " (required when CI=true)", pytrace=False)
    pytest.skip(message)


def require_browser() -> None:
    """Skip or fail unless Playwright and Debian's Chromium are both here."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "playwright is not installed (pip install -e '.[test]')")
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (apt-get install chromium)")


@contextmanager
def running_app(*, run_worker: bool) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL.

    With ``run_worker`` the lifespan runs too, so the embedded worker syncs and delivers.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(run_worker=run_worker), log_level="warning", lifespan="on" if run_worker else "off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class OfflineRouter:
    """A Playwright route handler: loopback requests go through, the rest are recorded and aborted."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        self.blocked: list[str] = []

    def __call__(self, route) -> None:  # noqa: ANN001
        """Continue or abort one request."""
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            self.requested.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


@dataclass
class OfflineBrowser:
    """A page in Chromium, what it asked for, and what went wrong in it."""

    page: Any
    router: OfflineRouter = field(default_factory=OfflineRouter)
    problems: list[str] = field(default_factory=list)


def _record_failure(problems: list[str], request: Any) -> None:
    """A request that failed, unless the page abandoned it by going elsewhere (a reload, a click):
    Chromium cancels what is still loading then (net::ERR_ABORTED), which is no fault of the page."""
    reason = request.failure or ""
    if "ERR_ABORTED" not in reason:
        problems.append(f"failed: {request.url} ({reason})")


@contextmanager
def offline_browser(profile: Path) -> Iterator[OfflineBrowser]:
    """Headless Debian Chromium with one page that can reach only loopback; records page errors,
    console errors and failed requests in ``problems``.
    """
    from playwright.sync_api import sync_playwright  # optional dependency (see require_browser)

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            browser = OfflineBrowser(page=context.new_page())
            context.route("**/*", browser.router)
            page, problems = browser.page, browser.problems
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
            page.on("requestfailed", lambda request: _record_failure(problems, request))
            yield browser
        finally:
            context.close()
