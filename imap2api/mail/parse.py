"""Parsing a raw message into the fields imap2api stores; fast (compat32) and never raising."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message

from imap2api.mail.charsets import decode_bytes
from imap2api.mail.headers import addresses, decode_text, format_names, parse_date
from imap2api.mail.references import parse_msg_ids

_MAX_PARTS = 500  # a bomb of nested multiparts must not take forever
_FROM_LINE = re.compile(rb"^From [^\r\n]*\r?\n")


@dataclass(slots=True)
class ParsedAttachment:
    """Metadata of one attachment (its bytes are not kept)."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool


@dataclass(slots=True)
class ParsedMessage:
    """What imap2api stores of a message."""

    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    subject: str = ""
    sender: str = ""
    sender_name: str = ""
    recipient: str = ""
    recipient_names: str = ""
    cc: str = ""
    date: datetime | None = None
    body_text: str = ""
    body_html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    has_attachments: bool = False
    size: int = 0


def parse_message(raw: bytes, *, max_body_chars: int = 2_000_000) -> ParsedMessage:
    """Parse raw RFC 5322 bytes; whatever is malformed is skipped, never raised."""
    result = ParsedMessage(size=len(raw))
    if raw.startswith(b"From "):
        raw = _FROM_LINE.sub(b"", raw, count=1)
    try:
        message = email.message_from_bytes(raw)
    except Exception:  # noqa: BLE001 - the stdlib parser is lenient, but be sure
        result.body_text = _clean(decode_bytes(raw, None))[:max_body_chars]
        return result
    _read_headers(message, result)
    try:
        _read_parts(message, result, max_body_chars)
    except Exception:  # noqa: BLE001 - keep the headers and whatever parts were read
        pass
    result.has_attachments = any(not item.inline for item in result.attachments)
    return result


def _header(message: Message, name: str) -> object:
    """A header's raw value (the first, if repeated), or None; never raises."""
    try:
        return message.get(name)
    except Exception:  # noqa: BLE001
        return None


def _read_headers(message: Message, result: ParsedMessage) -> None:
    """Fill the header fields."""
    ids = parse_msg_ids(decode_text(_header(message, "Message-ID")))
    result.message_id = ids[0] if ids else ""
    replies = parse_msg_ids(decode_text(_header(message, "In-Reply-To")))
    result.in_reply_to = replies[0] if replies else ""
    result.references = parse_msg_ids(decode_text(_header(message, "References")))
    result.subject = decode_text(_header(message, "Subject"))
    senders = addresses(_header(message, "From"))
    if senders:
        result.sender_name, result.sender = senders[0]
    to = addresses(_header(message, "To"))
    result.recipient = ", ".join(addr for _, addr in to)
    result.recipient_names = format_names(to)
    result.cc = ", ".join(addr for _, addr in addresses(_header(message, "Cc")))
    result.date = parse_date(_header(message, "Date"))


def _clean(text: str) -> str:
    """Body text with plain newlines and without NUL characters (PostgreSQL text cannot hold NUL)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.replace("\r\n", "\n") if "\r" in text else text


def _payload_bytes(part: Message) -> bytes:
    """A leaf's decoded payload (base64/quoted-printable undone as far as possible)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        payload = None
    if payload is None:
        raw = part.get_payload()
        if isinstance(raw, str):
            return raw.encode("ascii", "surrogateescape")
        return b""
    return payload


def _filename(part: Message) -> str | None:
    """An attachment's file name: RFC 2231 and RFC 2047 decoded; the ``name`` parameter as fallback."""
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:  # noqa: BLE001
        return None
    if isinstance(name, tuple):  # undecodable RFC 2231 value: (charset, language, text)
        charset, _, text = name
        raw = text.encode("latin-1", "replace") if isinstance(text, str) else text
        name = decode_bytes(raw, charset)
    return decode_text(name) or None if name else None


def _disposition(part: Message) -> str:
    """``attachment``, ``inline`` or ``""``."""
    value = str(part.get("Content-Disposition", "") or "")
    return value.split(";", 1)[0].strip().lower()


def _read_parts(message: Message, result: ParsedMessage, max_body_chars: int) -> None:
    """Walk the MIME tree: the first text/plain and text/html become bodies, the rest attachments."""
    texts: list[str] = []
    html: str | None = None
    for count, (part, in_mixed) in enumerate(_walk(message)):
        if count > _MAX_PARTS:
            break
        content_type = part.get_content_type()
        disposition = _disposition(part)
        filename = _filename(part)
        is_text = content_type in ("text/plain", "text/html")
        if is_text and disposition != "attachment" and not (filename and disposition == "inline" and texts):
            text = _clean(decode_bytes(_payload_bytes(part), part.get_content_charset()))
            if content_type == "text/plain":
                if not texts or in_mixed:
                    texts.append(text)
            elif html is None:
                html = text
            continue
        payload = _payload_bytes(part) if content_type != "message/rfc822" else _inner_bytes(part)
        if content_type == "message/rfc822" and not filename:
            filename = (_inner_subject(part) or "forwarded message") + ".eml"
        content_id = part.get("Content-ID")
        result.attachments.append(
            ParsedAttachment(
                filename=filename,
                content_type=content_type,
                size=len(payload),
                content_id=decode_text(content_id) or None if content_id else None,
                inline=disposition == "inline" or (disposition == "" and bool(content_id) and not filename),
            )
        )
    result.body_text = "\n".join(texts)[:max_body_chars]
    result.body_html = (html or "")[:max_body_chars]


def _walk(message: Message) -> Iterator[tuple[Message, bool]]:
    """(leaf, inside multipart/mixed) in document order; message/rfc822 parts are leaves.

    Further text parts of a multipart/mixed join the body; of a multipart/alternative only
    the first text/plain counts.
    """
    stack = [(message, False)]
    while stack:
        part, in_mixed = stack.pop()
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            children = part.get_payload()
            if not isinstance(children, list):
                continue
            mixed = part.get_content_subtype() == "mixed"
            stack.extend((child, mixed) for child in reversed(children) if isinstance(child, Message))
            continue
        yield part, in_mixed


def _inner_bytes(part: Message) -> bytes:
    """The serialized forwarded message inside a message/rfc822 part."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        try:
            return payload[0].as_bytes()
        except Exception:  # noqa: BLE001
            return b""
    return _payload_bytes(part)


def _inner_subject(part: Message) -> str:
    """The subject of a forwarded message."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return decode_text(payload[0].get("Subject"))
    return ""
