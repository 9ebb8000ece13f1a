"""Standard Webhooks signatures (https://www.standardwebhooks.com): pure functions, no I/O.

A secret is ``whsec_`` + base64 of 32 random bytes. The signature of a message is
``v1,`` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), the key being the
base64-decoded part of the secret after the prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    """Raised when a message's signature or timestamp does not verify."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret (the bytes after ``whsec_``, base64-decoded)."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` header value (``v1,<base64>``) for one message."""
    payload = body.encode() if isinstance(body, str) else body
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for a message sent now (or at ``timestamp``)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
    }


def verify(
    secret: str,
    msg_id: str,
    timestamp: str | int,
    body: bytes | str,
    signature_header: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Check a received message; raises InvalidSignature unless one ``v1`` signature matches.

    The header may carry several space-separated signatures (during a secret rotation).
    """
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError) as exc:
        raise InvalidSignature("bad webhook-timestamp") from exc
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance:
        raise InvalidSignature("webhook-timestamp outside the tolerance")
    expected = sign(secret, msg_id, stamp, body).split(",", 1)[1]
    for candidate in signature_header.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise InvalidSignature("no matching signature")
