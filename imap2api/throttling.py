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

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TOKEN_CACHE_SECONDS = 60
_EXEMPT_PREFIXES = ("/docs", "/openapi.json", "/healthz", "/readyz", "/metrics", "/static")


def _spends_budget(scope: Scope) -> bool:
    """API requests spend the budget. Admin pages do not (they need an admin's session, and one
    page pulls a dozen assets), but login attempts do: the anonymous budget caps password guessing.
    """
    path = scope["path"]
    if path == "/admin" or path.startswith("/admin/"):
        return scope["method"] == "POST" and path.rstrip("/") == "/admin/login"
    return True


def _user_id(key_hash: str) -> int | None:
    """The user a token hash belongs to, in its own session."""
    with session_scope() as session:
        return user_id_for_token_hash(session, key_hash=key_hash)


class Throttle:
    """The limiter and its storage; one per application."""

    def __init__(self) -> None:
        if settings.redis_url:
            storage = storage_from_string(f"async+{settings.redis_url}", implementation="redispy",
                                          key_prefix="imap2api-throttle")
        else:
            storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(storage)
        self.user_limit = parse(settings.rate_limit_user)
        self.anon_limit = parse(settings.rate_limit_anon)
        self._tokens: dict[str, tuple[int | None, float]] = {}

    async def identity(self, scope: Scope) -> tuple[str, Any]:
        """The budget a request spends: its user's, or its client IP's."""
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
                return f"user:{cached[0]}", self.user_limit
        client = scope.get("client") or ("unknown", 0)
        return f"ip:{client[0]}", self.anon_limit

    async def hit(self, scope: Scope) -> tuple[bool, dict[str, str], int]:
        """Spend one request; returns (allowed, headers, seconds until a slot frees)."""
        name, limit = await self.identity(scope)
        allowed = await self.limiter.hit(limit, name)
        stats = await self.limiter.get_window_stats(limit, name)
        reset = math.ceil(stats.reset_time)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        headers = {
            "X-RateLimit-Limit": str(limit.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(reset),
        }
        return allowed, headers, wait


async def _json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    """Send a complete JSON response."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class LimitsMiddleware:
    """ASGI middleware enforcing the request budget and the body-size limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.throttle = Throttle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the budget, then pass the request on with the rate-limit headers added."""
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        if settings.rate_limit_enabled and _spends_budget(scope):
            allowed, headers, wait = await self.throttle.hit(scope)
            if not allowed:
                detail = f"Request was throttled. Expected available in {wait} seconds."
                await _json(send, 429, {"detail": detail}, {**headers, "Retry-After": str(wait)})
                return
        request_headers = dict(scope.get("headers") or [])
        declared = request_headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_request_bytes:
            await _json(send, 413, {"detail": "Request body is too large."}, headers)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and headers:
                message["headers"] = [*message.get("headers", []),
                                      *((k.lower().encode(), v.encode()) for k, v in headers.items())]
            await send(message)

        await self.app(scope, _bounded(receive, settings.max_request_bytes), send_with_headers)


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
