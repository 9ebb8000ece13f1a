"""Credentials on the IMAP wire: quoted strings or literals that no byte of a password can break out of."""

from __future__ import annotations

import ast
import re

from imap2api.sync.imap import literal

# Never sent: CR or LF would end the command inside a quoted string, and NUL is not allowed even in a literal.
UNSENDABLE = re.compile(r"[\r\n\x00]")
_MAX_SERVER_TEXT = 200
# How imaplib words a refusal (imapclient's LoginError repeats it): the response data as bytes reprs.
_IMAPLIB_ERROR = re.compile(r"\w+ command error: \w+ (\[.*\])", re.DOTALL)


def imap_login_argument(value: str) -> bytes:
    """``value`` as an IMAP string: quoted (``\\`` and ``"`` escaped) if printable ASCII, else a literal.

    A literal is sent as ``{n}`` and then the n bytes (UTF-8) uninterpreted; imapclient's raw commands
    send any ``literal`` (and any 8-bit argument) that way.
    """
    if UNSENDABLE.search(value):
        raise ValueError("CR, LF and NUL cannot be sent in an IMAP credential")
    raw = value.encode("utf-8")
    if all(0x20 <= byte < 0x7F for byte in raw):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(raw)


def server_text(data: list[bytes | tuple[bytes, ...] | None] | None) -> str:
    """The text of a tagged response, printable and short enough for an error message."""
    parts = [item.decode("utf-8", errors="replace") for item in data or [] if isinstance(item, bytes)]
    text = "".join(ch if ch.isprintable() else " " for ch in " ".join(parts)).strip()
    return text[:_MAX_SERVER_TEXT] or "no reason given"


def refusal_text(message: str) -> str:
    """A refusal as the server worded it: imaplib's ``LOGIN command error: NO [b'...']`` becomes the text
    inside, other messages stay as they are; printable and short, like ``server_text``."""
    match = _IMAPLIB_ERROR.fullmatch(message.strip())
    if match:
        try:
            data = ast.literal_eval(match[1])  # literals only: the list of bytes imaplib formatted
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            data = None
        if isinstance(data, list):
            return server_text(data)
    return server_text([message.encode("utf-8", errors="replace")])
