"""Request budgets (per user, per anonymous IP) and body-size limits, for REST and GraphQL alike.

Counters live in memory in embedded mode and in Redis when ``IMAP2API_REDIS_URL`` is set, so
several API processes share one budget. Every response carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds); past the limit the answer is
DRF's ``429 {"detail": "Request was throttled. Expected available in N seconds."}`` with
``Retry-After``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.concurrency import run_in_threadpool

from imap2api.config import settings
from imap2api.crud.users import user_id_for_token_hash
from imap2api.db import session_scope
from imap2api.graphql.context import token_from_header
from imap2api.security import hash_token_key
from imap2api.sending.limits import body_limit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TOKEN_CACHE_SECONDS = 60
# /favicon.ico: browsers fetch it beside every page, unasked.
_EXEMPT_PREFIXES = ("/docs", "/openapi.json", "/healthz", "/readyz", "/metrics", "/static", "/favicon.ico")


def _spends_budget(scope: Scope) -> bool:
    """API requests spend the budget. Admin pages do not (they need an admin's session, and one
    page pulls a dozen assets), but login attempts do: the anonymous budget caps password guessing.
    """
    path = scope["path"]
    if path == "/admin" or path.startswith("/admin/"):
        method: str = scope["method"]
        return method == "POST" and path.rstrip("/") == "/admin/login"
    return True


def _user_id(key_hash: str) -> int | None:
    """The user a token hash belongs to, in its own session."""
    with session_scope() as session:
        return user_id_for_token_hash(session, key_hash=key_hash)


@dataclass(frozen=True)
class Verdict:
    """The outcome of spending one request: allowed or not, the headers to send, seconds to wait."""

    allowed: bool
    headers: dict[str, str]
    wait: int

    @property
    def detail(self) -> str:
        """DRF's sentence for a throttled request."""
        return f"Request was throttled. Expected available in {self.wait} seconds."


class Throttle:
    """The limiter and its storage; one per application, shared by every transport."""

    def __init__(self) -> None:
        if settings.redis_url:
            storage = storage_from_string(
                f"async+{settings.redis_url}",
                implementation="redispy",
                key_prefix=f"{settings.redis_prefix}:throttle",
            )
        else:
            storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(storage)
        self.user_limit = parse(settings.rate_limit_user)
        self.anon_limit = parse(settings.rate_limit_anon)
        self._tokens: dict[str, tuple[int | None, float]] = {}

    async def identity(self, scope: Scope) -> tuple[str, Any]:
        """The budget a request spends: its token's user's, or its client IP's."""
        headers = dict(scope.get("headers") or [])
        key = token_from_header(headers.get(b"authorization", b"").decode("latin-1"))
        if key:
            key_hash = hash_token_key(key)
            cached = self._tokens.get(key_hash)
            if cached is None or cached[1] < time.monotonic():
                user_id = await run_in_threadpool(_user_id, key_hash)
                if len(self._tokens) > 10_000:
                    self._tokens.clear()
                cached = self._tokens[key_hash] = (user_id, time.monotonic() + _TOKEN_CACHE_SECONDS)
            if cached[0] is not None:
                return self.user_budget(cached[0])
        return self.client_budget(scope)

    def user_budget(self, user_id: int) -> tuple[str, Any]:
        """The budget of an authenticated user, whatever transport they use."""
        return f"user:{user_id}", self.user_limit

    def client_budget(self, scope: Scope) -> tuple[str, Any]:
        """The budget of an anonymous client: its IP address (as the trusted proxies report it)."""
        client = scope.get("client") or ("unknown", 0)
        return f"ip:{client[0]}", self.anon_limit

    async def spend(self, name: str, limit: Any) -> Verdict:
        """Spend one request of the budget ``name``."""
        allowed = await self.limiter.hit(limit, name)
        stats = await self.limiter.get_window_stats(limit, name)
        headers = {
            "X-RateLimit-Limit": str(limit.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(math.ceil(stats.reset_time)),
        }
        return Verdict(allowed, headers, max(1, math.ceil(stats.reset_time - time.time())))

    async def hit(self, scope: Scope) -> Verdict:
        """Spend one request of the budget the connection's credentials name."""
        return await self.spend(*await self.identity(scope))


async def _json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str], prefix: str = ""
) -> None:
    """Send a complete JSON response (``prefix="websocket."``: as a websocket handshake's denial)."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await send({"type": f"{prefix}http.response.start", "status": status, "headers": raw_headers})
    await send({"type": f"{prefix}http.response.body", "body": payload})


class LimitsMiddleware:
    """ASGI middleware enforcing the request budget (HTTP requests and websocket handshakes) and
    the body-size limit. Operations sent over an open websocket spend the same budgets in
    :mod:`imap2api.graphql.websocket`."""

    def __init__(self, app: ASGIApp, throttle: Throttle) -> None:
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the budget, then pass the request on with the rate-limit headers added."""
        if scope["type"] == "websocket":
            await self._handshake(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        if settings.rate_limit_enabled and _spends_budget(scope):
            verdict = await self.throttle.hit(scope)
            headers = verdict.headers
            if not verdict.allowed:
                retry = {**headers, "Retry-After": str(verdict.wait)}
                await _json(send, 429, {"detail": verdict.detail}, retry)
                return
        request_headers = dict(scope.get("headers") or [])
        declared = request_headers.get(b"content-length")
        limit = body_limit(scope["path"])
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _json(send, 413, {"detail": "Request body is too large."}, headers)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and headers:
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ]
            await send(message)

        await self.app(scope, _bounded(receive, limit), send_with_headers)

    async def _handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A websocket handshake spends one request; refused with DRF's 429 where the server can say so."""
        if settings.rate_limit_enabled:
            verdict = await self.throttle.hit(scope)
            if not verdict.allowed:
                await receive()  # websocket.connect
                if "websocket.http.response" in scope.get("extensions", {}):
                    await _json(
                        send,
                        429,
                        {"detail": verdict.detail},
                        {**verdict.headers, "Retry-After": str(verdict.wait)},
                        prefix="websocket.",
                    )
                else:
                    await send({"type": "websocket.close", "code": 1008, "reason": verdict.detail})
                return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised when a streamed body passes the size limit."""


def _bounded(receive: Receive, limit: int) -> Receive:
    """A receive callable that stops a chunked body once it exceeds ``limit`` bytes."""
    seen = 0

    async def wrapped() -> MutableMapping[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return wrapped
