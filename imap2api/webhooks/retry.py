"""When to try a failed delivery again: pure functions over one attempt's result.

Schedule: the n-th failed attempt of a chain waits ``base · 2^(n-1)`` seconds (±25 % jitter, so
endpoints that failed together do not retry in lockstep), never more than a quarter of the span
per wait; the last attempt is placed at the end of the span (a day by default) after the chain's
first attempt, and nothing is tried after it. With the default 30 s base that is about 14
attempts: 30 s, 1 min, 2 min, … 4¼ h, then 6 h waits, the last one clamped to reach 24 h.

A ``Retry-After`` (seconds or an HTTP date) is honoured: the wait is at least what it asks; a
receiver asking for more time than the span has left gets no further attempt.

Retried: timeouts, connection errors, unresolvable hosts, 3xx, 408, 429 and 5xx. Final: every
other 4xx, a refused address and an unusable URL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from imap2api.webhooks.sender import SendResult

RETRYABLE_4XX = frozenset({408, 429})
JITTER = 0.25


def is_final(result: SendResult) -> bool:
    """Whether a failed attempt must not be retried."""
    if result.refused:
        return True
    status = result.status_code
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(
    failures: int, *, base: float, span: float, rand: Callable[[], float] = random.random
) -> float:
    """The jittered wait after the ``failures``-th failed attempt of a chain (1-based)."""
    longest = max(base, span / 4)
    raw = min(longest, base * 2.0 ** min(failures - 1, 60))
    return min(longest, raw * (1 - JITTER + 2 * JITTER * rand()))


def retry_delay(
    result: SendResult,
    *,
    failures: int,
    chain_started: datetime,
    now: datetime,
    base: float,
    span: float,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until the next attempt after a failed one, or None when there is none."""
    if is_final(result):
        return None
    remaining = span - (now - chain_started).total_seconds()
    if remaining <= 0:
        return None
    delay = backoff_seconds(failures, base=base, span=span, rand=rand)
    asked = parse_retry_after(result.retry_after, now=now)
    if asked is not None:
        if asked > remaining:
            return None
        delay = max(delay, asked)
    return min(delay, remaining)
