"""CSRF defence for /admin: requests that change state must come from the admin's own pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# sqladmin runs custom actions and logout as GET links, so those paths count as state-changing too.
STATE_CHANGING_GET = ("/action/", "/logout")


def changes_state(method: str, path: str) -> bool:
    """Whether a request to the admin can change something."""
    return method not in SAFE_METHODS or any(marker in path for marker in STATE_CHANGING_GET)


def same_origin(headers: Headers) -> bool:
    """Whether the browser says the request comes from our own origin.

    ``Sec-Fetch-Site`` (every current browser sends it) decides when present: ``same-origin``,
    or ``none`` for an address typed by the user. Otherwise ``Origin``, then ``Referer``, must
    name this host. A request with none of them is refused: browsers always send one.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    source = headers.get("origin") or headers.get("referer")
    host = headers.get("host")
    if not source or not host or source == "null":
        return False
    return urlsplit(source).netloc.lower() == host.lower()


class SameOriginMiddleware:
    """Refuse state-changing admin requests that another site could have made (403)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass safe or same-origin requests through; answer 403 to the rest."""
        if (
            scope["type"] == "http"
            and changes_state(scope["method"], scope["path"])
            and not same_origin(Headers(scope=scope))
        ):
            response = PlainTextResponse("Cross-site request refused.", status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
