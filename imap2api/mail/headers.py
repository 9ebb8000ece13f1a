"""Decoding headers: RFC 2047 words in any charset, raw 8-bit bytes, addresses and dates."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime

from imap2api.mail.charsets import decode_bytes

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FOLD = re.compile(r"\r?\n[ \t]+")
_WS = re.compile(r"\s+")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _raw_bytes(value: str) -> bytes | None:
    """Recover the original bytes of a header that held raw 8-bit data (compat32 surrogateescapes them)."""
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        try:
            return value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return None  # already real Unicode text
    return None


def decode_text(value: object) -> str:
    """A header value as clean text: encoded-words decoded, 8-bit bytes recovered, unfolded."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)  # an email.header.Header from compat32
    raw = _raw_bytes(value)
    if raw is not None:
        value = decode_bytes(raw, None)
    value = _FOLD.sub(" ", value)
    if "=?" in value:
        value = _decode_words(value)
    value = _CONTROL.sub("", value.replace("\r", " ").replace("\n", " "))
    return _WS.sub(" ", value).strip()


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words (adjacent ones joined); malformed text is kept as written."""
    try:
        parts = decode_header(value)
    except Exception:  # noqa: BLE001 - malformed encoded-words: keep the text as it is
        return value
    # Unencoded chunks keep their own whitespace, so plain concatenation is right.
    return "".join(
        decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk for chunk, charset in parts
    )


def addresses(value: object) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, decoded; empty entries dropped."""
    text = decode_text(value) if value is not None else ""
    if not text:
        return []
    try:
        pairs = getaddresses([text])
    except Exception:  # noqa: BLE001 - pathological input: treat the whole as one address
        pairs = [("", text)]
    return [(name.strip(), addr.strip()) for name, addr in pairs if addr.strip()]


def format_names(pairs: list[tuple[str, str]]) -> str:
    """``Name <addr>, addr2`` for display."""
    return ", ".join(f"{name} <{addr}>" if name else addr for name, addr in pairs)


def parse_date(value: object) -> datetime | None:
    """The Date header as an aware UTC datetime, or None when missing, unparseable or absurd."""
    text = decode_text(value)
    if not text:
        return None
    text = re.sub(r"\([^)]*\)\s*$", "", text).strip()  # trailing "(PST)" comments
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed = parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    if parsed < _EPOCH or parsed > datetime.now(timezone.utc) + timedelta(days=366):
        return None
    return parsed
