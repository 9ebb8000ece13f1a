"""Security headers: ``nosniff`` on every answer; on HTML pages a Content Security Policy that forbids
framing, ``X-Frame-Options`` and a ``Referrer-Policy``. A header the page set itself wins."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# For HTML without a policy of its own (the "assets not installed" pages, any future page): no framing
# (clickjacking), no plugins, no <base> redirecting relative URLs; scripts are the page's own business.
DEFAULT_POLICY = "frame-ancestors 'none'; object-src 'none'; base-uri 'self'"
# Full referers to our own pages (the admin's CSRF guard falls back to them), nothing to other sites.
REFERRER_POLICY = "same-origin"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def script_hash(source: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def inline_script_hashes(page: str) -> list[str]:
    """The CSP hashes of the inline ``<script>`` elements of an HTML text."""
    return [script_hash(source) for source in _INLINE_SCRIPT.findall(page)]


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP answer, keeping those the answer already has."""

    def __init__(self, app: ASGIApp, *, policy: str = DEFAULT_POLICY) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the start of its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # ASGI allows leaving them out
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
                if headers.get("content-type", "").lower().startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", self.policy)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: Starlette) -> None:
    """Wrap the whole application, outside Starlette's error middleware, so even a 500 has the headers
    (``add_middleware`` would put it inside)."""
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeadersMiddleware(build())

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
