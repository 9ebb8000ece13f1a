"""Parsing a raw message into the fields imap2api stores: fast (compat32 API) and never raising."""

from __future__ import annotations

import binascii
import contextlib
import email
import email.feedparser
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email._policybase import compat32
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING, cast

from imap2api.mail.headers import (
    content_charset,
    decode_bytes,
    decode_header,
    format_addresses,
    header_param,
    header_text,
    parse_addresses,
    parse_date,
)
from imap2api.mail.references import parse_msg_ids

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["ParsedAttachment", "ParsedMessage", "parse_message"]

_MAX_PARTS = 1000  # a bomb of parts must neither take forever nor flood the attachments table
MAX_REFERENCES = 100  # References ids kept per message: threading needs the nearest, not 100k of them
_TOP_HEADERS = frozenset({"message-id", "in-reply-to", "references", "subject", "from", "date"})
_LIST_HEADERS = frozenset({"to", "cc"})
_PART_HEADERS = frozenset({"content-disposition", "content-type", "content-id", "content-transfer-encoding"})
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(slots=True)
class ParsedAttachment:
    """Metadata of one attachment; its bytes are not kept."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    # Where the part is for IMAP (``BODY[2.1]``: RFC 3501 section numbers) and its transfer encoding,
    # so that a download fetches and decodes just this part.
    section: str = ""
    encoding: str = ""


@dataclass(slots=True)
class ParsedMessage:
    """The fields imap2api stores of one message."""

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


@dataclass(slots=True)
class _Bodies:
    """The text bodies gathered while walking the MIME tree."""

    limit: int
    texts: list[str] = field(default_factory=list)
    text_parent: Message | None = None
    text_chars: int = 0
    html: str | None = None
    charset: str | None = None  # the first declared body charset: the best guess for raw 8-bit headers


class _BoundaryMatch:
    """What the stdlib's feedparser compiles a regex for, per multipart boundary, without compiling one.

    ``email.feedparser`` builds a pattern ``(?P<sep>--boundary)(?P<end>--)?...$`` (``re.escape``d)
    for every multipart it meets; boundaries are unique, so ``re``'s cache never helps, and parsing
    the pattern costs a third of parsing a small message. This matches the same lines: the
    literal separator, then the pattern's fixed tail, compiled once (``sep`` is the only group the
    parser does not read, and it is left out).
    """

    _TAIL_SOURCE = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    _TAIL = re.compile(_TAIL_SOURCE[1:])

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        """The tail's match after the separator at the start of ``line``, else None."""
        if not line.startswith(self.separator):
            return None
        return self._TAIL.match(line, len(self.separator))


class _FeedparserRe:
    """The ``re`` module as a private copy of ``email.feedparser`` sees it: boundary patterns become
    ``_BoundaryMatch``; anything else (or a future feedparser's other pattern) is ``re``'s own."""

    _PREFIX = "(?P<sep>"

    def __getattr__(self, name: str) -> object:
        return getattr(re, name)

    def compile(self, pattern: str, flags: int = 0) -> object:
        """``re.compile``, or a ``_BoundaryMatch`` for the boundary pattern."""
        tail = _BoundaryMatch._TAIL_SOURCE
        if (
            isinstance(pattern, str)
            and not flags
            and pattern.startswith(self._PREFIX)
            and pattern.endswith(tail)
        ):
            escaped = pattern[len(self._PREFIX) : -len(tail)]
            separator = re.sub(r"\\(.)", r"\1", escaped, flags=re.DOTALL)
            if re.escape(separator) == escaped:
                return _BoundaryMatch(separator)
        return re.compile(pattern, flags)


def _private_feedparser() -> type[email.feedparser.BytesFeedParser]:
    """A copy of the stdlib's BytesFeedParser whose module sees ``_FeedparserRe`` (the stdlib's own,
    which other code and the bench's raw limit use, is left as it is)."""
    spec = importlib.util.find_spec("email.feedparser")
    if spec is None or spec.loader is None:
        return email.feedparser.BytesFeedParser
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.re = _FeedparserRe()  # type: ignore[attr-defined]
    parser: type[email.feedparser.BytesFeedParser] = module.BytesFeedParser
    return parser


_BytesFeedParser = _private_feedparser()


def _message_from_bytes(raw: bytes) -> Message:
    """``email.message_from_bytes`` (compat32), through the private feedparser."""
    parser = _BytesFeedParser(policy=compat32)
    parser.feed(raw)
    return parser.close()


def parse_message(raw: bytes, *, max_body_chars: int = 2_000_000) -> ParsedMessage:
    """Parse raw RFC 5322 bytes; whatever is malformed is decoded as far as possible, never raised."""
    try:
        raw = raw if isinstance(raw, bytes) else _as_bytes(raw)
    except Exception:
        raw = b""
    result = ParsedMessage(size=len(raw))
    with contextlib.suppress(Exception):  # last resort; the steps inside guard themselves
        _parse(raw, result, max(0, int(max_body_chars)))
    return result


def _as_bytes(raw: object) -> bytes:
    """Bytes of a bytes-like or str argument."""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    # bytearray, memoryview and the like; the caller catches what bytes() rejects.
    return bytes(cast("ReadableBuffer", raw))


def _parse(raw: bytes, result: ParsedMessage, limit: int) -> None:
    """Fill ``result`` from the message tree."""
    if raw.startswith(b"From "):  # mbox separator line
        end = raw.find(b"\n")
        raw = raw[end + 1 :] if end >= 0 else b""
    complete = True
    try:
        message = _message_from_bytes(raw)
    except Exception:  # RecursionError on absurd nesting: keep the headers at least
        complete = False
        message = BytesParser().parsebytes(raw, headersonly=True)
    bodies = _Bodies(limit=limit)
    if complete or message.get_content_maintype() != "multipart":
        try:
            for part, parent, section in _leaves(message):
                _read_leaf(part, parent, section, bodies, result.attachments)
        except Exception:  # keep what was read before the failure
            pass
    result.body_text = "\n".join(bodies.texts)[:limit]
    result.body_html = (bodies.html or "")[:limit]
    result.has_attachments = any(not item.inline for item in result.attachments)
    with contextlib.suppress(Exception):
        _read_headers(message, result, bodies.charset)


def _read_headers(message: Message, result: ParsedMessage, charset: str | None) -> None:
    """Fill the header fields from the raw header values (compat32 would hand out Header objects)."""
    first: dict[str, str] = {}
    lists: dict[str, list[str]] = {"to": [], "cc": []}
    for name, value in message.raw_items():
        key = name.lower()
        if key in _TOP_HEADERS:
            first.setdefault(key, value)
        elif key in _LIST_HEADERS:
            lists[key].append(value)
    ids = parse_msg_ids(header_text(first.get("message-id")))
    result.message_id = ids[0] if ids else ""
    replies = parse_msg_ids(header_text(first.get("in-reply-to")))
    result.in_reply_to = replies[0] if replies else ""
    # The nearest ancestors come last (RFC 5322): a hostile References of 100k ids would cost as many
    # thread keys, and could join every thread whose id it names.
    result.references = parse_msg_ids(header_text(first.get("references")))[-MAX_REFERENCES:]
    result.subject = decode_header(first.get("subject"), charset)
    senders = parse_addresses([first["from"]], charset) if "from" in first else []
    if senders:
        result.sender_name, result.sender = senders[0]
    to = parse_addresses(lists["to"], charset)
    result.recipient = ", ".join(addr for _, addr in to if addr)
    result.recipient_names = format_addresses(to)
    result.cc = ", ".join(addr for _, addr in parse_addresses(lists["cc"], charset) if addr)
    result.date = parse_date(first.get("date"))


def _leaves(message: Message) -> Iterator[tuple[Message, Message | None, str]]:
    """(leaf, parent multipart, IMAP section) in document order, iteratively; message/* parts are leaves.

    Sections as RFC 3501 numbers them: the parts of a multipart are 1, 2...; of a nested one 2.1...;
    a message that is not multipart has its body as part 1.
    """
    stack: list[tuple[Message, Message | None, str]] = [(message, None, "")]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part, parent, section = stack.pop()
        seen += 1
        if part.is_multipart() and part.get_content_maintype() != "message":
            children = part.get_payload()
            if isinstance(children, list):
                numbered = [
                    (child, part, f"{section}.{number}" if section else str(number))
                    for number, child in enumerate(children, start=1)
                    if isinstance(child, Message)
                ]
                stack.extend(reversed(numbered))
        else:
            yield part, parent, section or "1"


def _part_headers(part: Message) -> dict[str, str]:
    """The first raw value of each MIME header this module looks at."""
    found: dict[str, str] = {}
    for name, value in part.raw_items():
        key = name.lower()
        if key in _PART_HEADERS and key not in found:
            found[key] = value
    return found


def _content_type(part: Message, value: str | None) -> str:
    """Lower-case type/subtype like ``get_content_type`` (digest defaults included), sanitised."""
    if not value:
        return part.get_default_type()
    tokens = value.split(";", 1)[0].lower().split()
    content_type = tokens[0] if tokens else ""  # a missing ";" before parameters is common
    if content_type.count("/") != 1:
        return "text/plain"  # RFC 2045: an invalid Content-Type means text/plain
    if not _CONTENT_TYPE.fullmatch(content_type):
        return "application/octet-stream"
    return content_type


def _disposition(value: str | None) -> str | None:
    """``inline``, ``attachment`` (also for unknown kinds), or None when absent."""
    if not value:
        return None
    kind = value.split(";", 1)[0].strip().lower()
    if not kind:
        return None
    return kind if kind == "inline" else "attachment"


def _filename(headers: dict[str, str], charset: str | None = None) -> str | None:
    """The decoded file name: Content-Disposition filename, else Content-Type name."""
    try:
        return header_param(headers.get("content-disposition"), "filename", charset) or header_param(
            headers.get("content-type"), "name", charset
        )
    except Exception:
        return None


def _read_leaf(
    part: Message, parent: Message | None, section: str, bodies: _Bodies, attachments: list[ParsedAttachment]
) -> None:
    """Take one leaf as a body or record it as an attachment; a failing part is skipped."""
    try:
        headers = _part_headers(part)
        content_type = _content_type(part, headers.get("content-type"))
        disposition = _disposition(headers.get("content-disposition"))
        # A multipart whose boundary went missing is left as one text blob by the parser.
        body_type = content_type if content_type in _BODY_TYPES else None
        if body_type is None and content_type.startswith("multipart/"):
            body_type = "text/plain"
        if body_type and _is_body(body_type, disposition, headers, bodies):
            _take_body(part, parent, body_type, headers, bodies)
            return
        attachment = _attachment(part, content_type, headers, disposition, bodies.charset)
        attachment.section = section
        attachment.encoding = (headers.get("content-transfer-encoding") or "").strip().lower()[:30]
        attachments.append(attachment)
    except Exception:  # about 5% of real messages have a part the stdlib chokes on
        pass


def _is_body(body_type: str, disposition: str | None, headers: dict[str, str], bodies: _Bodies) -> bool:
    """Whether a text/plain or text/html leaf is body text rather than an attachment."""
    if disposition is None:
        return True
    if disposition != "inline":
        return False
    # Inline with a file name: an attachment, unless nothing else has given the body yet.
    missing = not bodies.texts if body_type == "text/plain" else bodies.html is None
    return missing or not _filename(headers)


def _take_body(
    part: Message, parent: Message | None, body_type: str, headers: dict[str, str], bodies: _Bodies
) -> None:
    """The first text/html; the first text/plain plus further text/plain of the same multipart/mixed."""
    if body_type == "text/html":
        if bodies.html is None:
            html = _text(part, headers, bodies, html=True)
            bodies.html = html if html.strip() else None
        return
    if bodies.texts:
        same_mixed = parent is bodies.text_parent and parent is not None
        if (
            not same_mixed
            or parent is None
            or parent.get_content_subtype() != "mixed"
            or bodies.text_chars >= bodies.limit
        ):
            return
    text = _text(part, headers, bodies)
    if not text.strip():
        return  # an empty part (or a broken multipart's empty remains) must not stand in for the body
    bodies.texts.append(text)
    bodies.text_parent = parent
    bodies.text_chars += len(text) + 1


def _text(part: Message, headers: dict[str, str], bodies: _Bodies, *, html: bool = False) -> str:
    """A text part decoded with its declared charset (or a good guess), LF line ends, no NUL."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    charset = content_charset(headers.get("content-type"))
    if charset is None and html and not data.isascii():
        found = _META_CHARSET.search(data, 0, 4096)
        charset = found.group(1).decode("ascii") if found else None
    bodies.charset = bodies.charset or charset
    text = decode_bytes(data, charset)
    if len(text) > bodies.limit:
        text = text[: bodies.limit]
    if "\x00" in text:
        text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


def _attachment(
    part: Message, content_type: str, headers: dict[str, str], disposition: str | None, charset: str | None
) -> ParsedAttachment:
    """Metadata of a non-body leaf."""
    filename = _filename(headers, charset)
    if content_type == "message/rfc822" and not filename:
        filename = (_inner_subject(part) or "message") + ".eml"
    content_id = decode_header(headers.get("content-id")) or None
    return ParsedAttachment(
        filename=filename,
        content_type=content_type,
        size=_size(part, headers.get("content-transfer-encoding")),
        content_id=content_id,
        # No disposition but a Content-ID: an image the HTML shows (multipart/related).
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    )


def _inner_subject(part: Message) -> str:
    """The subject of a forwarded message."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        for name, value in payload[0].raw_items():
            if name.lower() == "subject":
                return decode_header(value)
    return ""


def _size(part: Message, encoding: str | None) -> int:
    """Decoded payload size in bytes, computed without decoding where the encoding allows."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return sum(_raw_size(child) for child in payload if isinstance(child, Message))
    if not isinstance(payload, str):
        return 0
    cte = (encoding or "").strip().lower()
    if cte == "base64":
        # Exact for valid base64 (4 characters per 3 bytes, minus padding) and far cheaper than decoding.
        end = len(payload)
        while end and payload[end - 1] in "\r\n\t =":
            end -= 1  # trailing whitespace and padding
        # "in" is a fast memchr; count only what is there (spaces and tabs rarely are).
        spaces = sum(payload.count(char, 0, end) for char in "\n\r \t" if char in payload)
        return max(0, (end - spaces) * 3 // 4)
    if cte == "quoted-printable":
        return len(binascii.a2b_qp(payload.encode("utf-8", "surrogateescape")))
    if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        data = part.get_payload(decode=True)
        return len(data) if isinstance(data, bytes) else 0
    return len(payload)  # compat32 keeps one character per raw byte


def _raw_size(message: Message) -> int:
    """Approximate serialized size of an embedded message, without regenerating it."""
    total = 0
    stack = [message]
    while stack:
        node = stack.pop()
        total += sum(len(name) + len(value) + 4 for name, value in node.raw_items()) + 2
        payload = node.get_payload()
        if isinstance(payload, list):
            boundary = len(node.get_boundary("") or "") + 6
            total += boundary * (len(payload) + 1)
            stack.extend(child for child in payload if isinstance(child, Message))
        elif isinstance(payload, str):
            total += len(payload)
    return total
