"""The SASL initial responses that carry a bearer token: OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's).

Both IMAP (AUTHENTICATE) and SMTP (AUTH) send these bytes base64-encoded. A server that refuses the
token answers a challenge (a JSON error, RFC 7628 §3.2.2) which the client must answer with an empty
response (OAUTHBEARER: ``\\x01``) before the server sends its final NO or 535.
"""

from __future__ import annotations

from collections.abc import Callable

OAUTHBEARER = "OAUTHBEARER"
XOAUTH2 = "XOAUTH2"
# RFC 7628 §3.2.3: after an error challenge the client sends a lone %x01 to end the exchange.
OAUTHBEARER_ABORT = b"\x01"


def xoauth2(user: str, token: str) -> bytes:
    """``user=USER^Aauth=Bearer TOKEN^A^A``, as Gmail and Outlook take it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, *, host: str, port: int) -> bytes:
    """The GS2 header naming the user (``=`` and ``,`` escaped), then host, port and the bearer token."""
    name = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={name},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def responder(mechanism: str, user: str, token: str, *, host: str, port: int) -> Callable[[], bytes]:
    """The client's answers in turn: the initial response with the token, then, to the error challenge
    a refusing server sends (RFC 7628 §3.2.2), the response that ends the exchange."""
    if mechanism == OAUTHBEARER:
        answers = iter((oauthbearer(user, token, host=host, port=port),))
        abort = OAUTHBEARER_ABORT
    else:
        answers, abort = iter((xoauth2(user, token),)), b""
    return lambda: next(answers, abort)


def choose(mechanisms: set[str]) -> str | None:
    """OAUTHBEARER (the standard) where the server offers it, else XOAUTH2; None when it offers neither."""
    upper = {mechanism.upper() for mechanism in mechanisms}
    if OAUTHBEARER in upper:
        return OAUTHBEARER
    if XOAUTH2 in upper:
        return XOAUTH2
    return None
