"""Checks the webhook tests share: an independent Standard Webhooks verifier, and polling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable


def spec_verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> bool:
    """True when one ``v1`` signature in the headers is the HMAC the spec defines, and it is fresh."""
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs((now or time.time()) - int(stamp)) > 300:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    digest = hmac.new(key, msg_id.encode() + b"." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    candidates = headers["webhook-signature"].split(" ")
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def wait_until(condition: Callable[[], object], *, timeout: float = 30.0, what: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
