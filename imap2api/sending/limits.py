"""The per-user send rate: ``IMAP2API_SEND_RATE_LIMIT`` messages per user, whatever the transport.

Spent from the request limiter's storage (imap2api.throttling): in memory without Redis, in
Redis (under the same key prefix) with it, so that every API process spends one budget. A
message is spent only once it is about to be queued: a refused request costs nothing.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from imap2api.config import settings

_lock = threading.Lock()
_limiters: dict[str, MovingWindowRateLimiter] = {}


def _limiter() -> MovingWindowRateLimiter:
    """The limiter over the configured storage (one per storage, built on first use)."""
    where = settings.redis_url or "memory://"
    with _lock:
        limiter = _limiters.get(where)
        if limiter is None:
            storage: Any
            if settings.redis_url:
                storage = storage_from_string(
                    settings.redis_url,
                    implementation="redispy",
                    key_prefix=f"{settings.redis_prefix}:throttle",
                )
            else:
                storage = storage_from_string("memory://")
            limiter = _limiters[where] = MovingWindowRateLimiter(storage)
    return limiter


def spend_send(user_id: int) -> int | None:
    """Spend one message of the user's send budget: None if allowed, else the seconds to wait."""
    limit = parse(settings.send_rate_limit)
    limiter = _limiter()
    name = f"send:user:{user_id}"
    if limit.amount > 0 and limiter.hit(limit, name):
        return None
    reset = limiter.get_window_stats(limit, name).reset_time
    return max(1, math.ceil(reset - time.time()))


# The REST path whose body may hold a whole message (under /api/ and /api/v1/).
SEND_PATHS = ("/api/emails/send/", "/api/v1/emails/send/")


def body_limit(path: str) -> int:
    """The largest request body ``path`` takes: ``MAX_REQUEST_BYTES``, but a whole message in base64
    (and some room) for ``POST /emails/send/``."""
    if path in SEND_PATHS:
        return max(settings.max_request_bytes, settings.send_max_message_bytes * 4 // 3 + 1_048_576)
    return settings.max_request_bytes


def forget_limiters() -> None:
    """Drop the limiters: in memory, what was spent is forgotten (tests reuse user ids across databases)."""
    with _lock:
        _limiters.clear()
