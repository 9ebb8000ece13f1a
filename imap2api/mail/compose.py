"""Composing outgoing mail: a draft (addresses, text, html, uploads, a forwarded original) to RFC 5322 bytes.

Pure functions over the stdlib ``email`` package, no I/O; the SMTP transport, the outbox and the API
build on them. Addresses are checked by imap2api.mail.addresses (``Address``, ``parse_address`` and
``ComposeError`` are re-exported here), a forwarded original is attached or inlined by
imap2api.mail.forward, the plain-text alternative of html comes from imap2api.mail.html_text. The
decisions:

- **Headers** are written by the ``email`` package (policy ``SMTP``: CRLF, folded at 78). Without a
  non-ASCII local part every header is ASCII: names and subjects RFC 2047-encoded, IDN domains in
  punycode, so no SMTPUTF8 is needed. With one (anywhere: From, To, Cc, Bcc, Reply-To), the message is
  written with policy ``SMTPUTF8``: headers in raw UTF-8 (RFC 6532), domains as typed, and
  ``Composed.smtputf8`` is True. Bodies are 7-bit in both cases (``cte_type="7bit"``), so the
  transport never needs 8BITMIME. A header line that would still exceed 998 octets (the ``email``
  package leaves some long words whole, e.g. an unbroken display name given as an ``Address``) is
  refused, never sent. ``User-Agent: imap2api`` (no version: fingerprinting for
  nobody's benefit) is the only non-essential header. The Message-ID is 32 random hex digits at the
  domain the caller gives (any domain; only one that cannot be written in a Message-ID is a
  ValueError, a programming error like a naive ``now``); ``Bcc`` stays in ``raw`` (the Sent copy) and
  ``without_bcc`` strips it for SMTP. In-Reply-To and References are folded between ids by a header
  class of our own: the ``email`` package would turn an id longer than a line into RFC 2047 words,
  which no client reads as an id. A subject that contains text shaped like an RFC 2047 word
  (``=?utf-8?q?x?=``) is decoded by the ``email`` package, as every mail reader would decode it.
- **The MIME tree** is the smallest that holds the content: text/plain; or multipart/alternative when
  there is html, with a plain-text alternative derived from the html when the draft has none (as
  Gmail does: imap2api.mail.html_text); the html becomes multipart/related when uploads carry a
  Content-ID (without html they are plain attachments: nothing could show them inline);
  multipart/mixed when there are attachments or a forwarded original. Text is UTF-8, line ends
  normalised, NUL dropped (it cannot travel in MIME text), lone surrogates (JSON allows them)
  replaced; the ``email`` package picks 7bit, quoted-printable or base64, whichever is 7-bit safe and
  smallest.
- **Attachments** are base64; the file name keeps its base name only, without control or bidi
  characters (``invoice<U+202E>fdp.exe`` would show as ``invoiceexe.pdf``), RFC 2231-encoded when
  non-ASCII. The content type must be ``type/subtype`` (parameters other than a text charset are
  dropped; an empty one means application/octet-stream). multipart/* and the message/* types that
  cannot be base64 (message/partial, message/external-body, message/delivery-status) go as
  application/octet-stream; message/rfc822 is embedded like a forwarded original. A ``content_id``
  must be printable ASCII (brackets optional) and unique in the draft.
- **A forwarded original** (imap2api.mail.forward) comes first after the draft's text; a forward
  without text is a multipart/mixed of it alone, never a bare message/rfc822 body. Inlined, its
  attachments go like uploads, repaired instead of refused (a bad content type becomes
  application/octet-stream, a bad Content-ID is dropped); its cid images stay inline when the html
  goes along and their Content-ID is not taken.
- **Replies**: ``reply_subject``/``forward_subject`` add the prefix once, keeping an existing one as
  written (``Re:``, ``RE :``, ``Re[2]:``; ``Fwd:``, ``Fw:``); a blank subject gives ``Re:``/``Fwd:``,
  without the trailing space folding would drop. ``reply_threading`` builds In-Reply-To and References
  per RFC 5322 3.6.4, bounded to ``MAX_REFERENCES`` ids (the root and the 19 nearest); ``compose``
  bounds the References it is given the same way, and refuses a value that is not one Message-ID.
"""

from __future__ import annotations

import io
import mimetypes
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy as email_policy
from email.generator import BytesGenerator
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from imap2api.mail.addresses import (
    ADDRESS_REFUSED,
    MAX_LINE,
    Address,
    ComposeError,
    Mailbox,
    checked_mailbox,
    has_refused,
    idna_domain,
    parse_address,
)
from imap2api.mail.forward import ForwardedAttachment, eml_name, inline_original, rfc822_part
from imap2api.mail.headers import clean, content_charset
from imap2api.mail.html_text import html_to_text
from imap2api.mail.references import parse_msg_ids

__all__ = [
    "MAX_REFERENCES",
    "Address",
    "ComposeError",
    "Composed",
    "Draft",
    "Upload",
    "compose",
    "forward_subject",
    "parse_address",
    "reply_subject",
    "reply_threading",
    "without_bcc",
]

# References of a reply: the thread's root and the 19 nearest ancestors. Enough for any client to
# thread (they use the last few), and a header of hundreds of ids would only grow with every reply.
MAX_REFERENCES = 20
_MAX_FILENAME = 200  # characters; file systems allow 255 bytes, and a few go to the extension

_MIME_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MIME_TYPE = re.compile(rf"({_MIME_TOKEN})/({_MIME_TOKEN})")
_CHARSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,39}")
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,990}>")  # printable ASCII, no "<" or ">" inside
_CONTENT_ID = re.compile(r"[\x21-\x7e]{1,250}")
_CONTENT_ID_SPECIALS = frozenset('<>()"\\[],;: ')
_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLY_PREFIX = re.compile(r"re\s*(?:\[\d{1,4}\]|\(\d{1,4}\))?\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"fwd?\s*:", re.IGNORECASE)
# Unicode categories dropped from file names: those never allowed in an address (ADDRESS_REFUSED), and
# format characters (bidi).
_FILENAME_DROPPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# message/* types whose body RFC 2046 forbids to encode: they cannot go as base64. The email package
# writes message/delivery-status only from parsed header blocks, never from encoded bytes.
_UNENCODABLE = frozenset({"message/partial", "message/external-body", "message/delivery-status"})
_HEADER_FIELDS = {
    "from": "sender",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "reply-to": "reply_to",
    "subject": "subject",
    "in-reply-to": "in_reply_to",
    "references": "references",
}


class _MsgIdsHeader(UnstructuredHeader, BaseHeader):
    """In-Reply-To and References, folded between ids only: the email package would encode a long id."""

    max_count = 1

    def fold(self, *, policy: Policy[Any]) -> str:
        """``Name: <id> <id>`` with a line break before an id that would pass column 78."""
        lines = [f"{self.name}:"]
        for token in str(self).split():
            if len(lines[-1]) + 1 + len(token) > 78 and lines[-1].strip() != f"{self.name}:":
                lines.append("")
            lines[-1] += " " + token
        return policy.linesep.join(lines) + policy.linesep


_REGISTRY = HeaderRegistry()
_REGISTRY.map_to_type("in-reply-to", _MsgIdsHeader)
_REGISTRY.map_to_type("references", _MsgIdsHeader)
# Bodies always 7-bit (cte_type): the email package then never writes 8bit, and no 8BITMIME is needed.
_ASCII_POLICY = email_policy.SMTP.clone(cte_type="7bit", header_factory=_REGISTRY)
_UTF8_POLICY = email_policy.SMTPUTF8.clone(cte_type="7bit", header_factory=_REGISTRY)


@dataclass(frozen=True)
class Upload:
    """A file to attach; with a ``content_id`` it is an image the html shows as ``cid:<content_id>``."""

    filename: str
    content_type: str
    data: bytes
    content_id: str = ""


@dataclass(frozen=True)
class Draft:
    """What the caller wants to send; ``compose`` checks it and writes the message."""

    sender: Address
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    subject: str = ""
    text: str = ""
    html: str = ""
    attachments: tuple[Upload, ...] = ()
    in_reply_to: str = ""  # a Message-ID with angle brackets
    references: tuple[str, ...] = ()  # Message-IDs with angle brackets, oldest first
    forward: bytes | None = None  # the raw original when forwarding
    forward_inline: bool = False  # False: attached as message/rfc822; True: its content inlined
    reply_to: tuple[Address, ...] = ()


@dataclass(frozen=True)
class Composed:
    """A written message: the bytes to store (Bcc included) and what the SMTP envelope needs."""

    raw: bytes
    message_id: str
    smtputf8: bool
    envelope_from: str
    recipients: tuple[str, ...]


# --- subjects and threading -----------------------------------------------------------------------


def reply_subject(subject: str) -> str:
    """``Re: `` added unless already there (Re:/RE:/re:Hi kept as written); a blank subject gives "Re:"."""
    text = clean(subject or "").strip()
    if _REPLY_PREFIX.match(text):
        return text
    # "Re:" alone for a blank subject: a trailing space would not survive header folding anyway.
    return f"Re: {text}" if text else "Re:"


def forward_subject(subject: str) -> str:
    """``Fwd: `` added unless a Fwd:/Fw:/FWD: prefix is already there; a blank subject gives "Fwd:"."""
    text = clean(subject or "").strip()
    if _FORWARD_PREFIX.match(text):
        return text
    return f"Fwd: {text}" if text else "Fwd:"


def reply_threading(message_id: str, references: str, in_reply_to: str = "") -> tuple[str, tuple[str, ...]]:
    """(In-Reply-To, References) of a reply, from the original's Message-ID, References and In-Reply-To.

    RFC 5322 3.6.4: the original's References (or, lacking them, its In-Reply-To when that holds a
    single id) followed by its Message-ID. Ids that cannot be written in a header are dropped, and
    the list is bounded to ``MAX_REFERENCES``: the first id (the thread's root) and the nearest ones.
    Without a Message-ID the reply cannot point at the original: ("", the original's references).
    """
    own = _header_ids(message_id)
    refs = _header_ids(references)
    if not refs:
        parents = _header_ids(in_reply_to)
        refs = parents if len(parents) == 1 else []
    if not own:
        return "", _bounded(refs)
    parent = own[0]
    return parent, _bounded([ref for ref in refs if ref != parent] + [parent])


def _header_ids(value: str) -> list[str]:
    """The Message-IDs of a header text that a header can carry (printable ASCII, bracketed)."""
    return [found for found in parse_msg_ids(value or "") if _MSG_ID.fullmatch(found)]


def _bounded(refs: list[str]) -> tuple[str, ...]:
    """At most MAX_REFERENCES ids: the first and the last ones."""
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    return tuple(refs)


def _msg_id(value: str, field: str) -> str:
    """A Message-ID from the caller (``<id>``, or a bare ``id@host``) as ``<id>``; raises ComposeError."""
    text = value.strip() if isinstance(value, str) else ""
    found = _header_ids(text)
    # Nothing around the id: parse_msg_ids skips text between ids, and here that would be an injection.
    if len(found) != 1 or text not in (found[0], found[0][1:-1]):
        raise ComposeError("Enter a Message-ID such as <id@example.com>.", field=field)
    return found[0]


# --- composing ------------------------------------------------------------------------------------


def compose(draft: Draft, *, message_id_domain: str, now: datetime) -> Composed:
    """Check a draft and write it as a message (CRLF, 7-bit bodies, Bcc kept); raises ComposeError."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    sender = checked_mailbox(draft.sender, "sender")
    lists = {
        name: [checked_mailbox(item, name) for item in getattr(draft, name)] for name in ("to", "cc", "bcc")
    }
    reply_to = [checked_mailbox(item, "reply_to") for item in draft.reply_to]
    recipients = _recipients([*lists["to"], *lists["cc"], *lists["bcc"]])
    if not recipients:
        raise ComposeError("Add at least one recipient in to, cc or bcc.", field="to")
    subject = _subject(draft.subject)
    in_reply_to = _msg_id(draft.in_reply_to, "in_reply_to") if draft.in_reply_to else ""
    references = _bounded(list(dict.fromkeys(_msg_id(ref, "references") for ref in draft.references)))
    everyone = [sender, *lists["to"], *lists["cc"], *lists["bcc"], *reply_to]
    smtputf8 = any(mailbox.utf8 for mailbox in everyone)
    policy = _UTF8_POLICY if smtputf8 else _ASCII_POLICY
    message_id = f"<{secrets.token_hex(16)}@{_id_domain(message_id_domain)}>"

    root = EmailMessage(policy=policy)
    root["From"] = sender.header(smtputf8)
    for name, header in (("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")):
        if lists[name]:
            root[header] = [mailbox.header(smtputf8) for mailbox in lists[name]]
    if reply_to:
        root["Reply-To"] = [mailbox.header(smtputf8) for mailbox in reply_to]
    root["Subject"] = subject
    root["Date"] = format_datetime(now.replace(microsecond=0))
    root["Message-ID"] = message_id
    if in_reply_to:
        root["In-Reply-To"] = in_reply_to
    if references:
        root["References"] = " ".join(references)
    root["User-Agent"] = "imap2api"
    root["MIME-Version"] = "1.0"
    body = _Builder(policy).body(draft)
    for name, value in body.items():  # the content headers and payload move onto the top-level message
        root[name] = value
    root.set_payload(body.get_payload())

    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=policy).flatten(root, linesep="\r\n")
    raw = buffer.getvalue()
    _check_header_lines(raw)
    return Composed(
        raw=raw,
        message_id=message_id,
        smtputf8=smtputf8,
        envelope_from=sender.envelope(),
        recipients=recipients,
    )


def _recipients(mailboxes: list[Mailbox]) -> tuple[str, ...]:
    """Envelope recipients in order, each once (compared case-insensitively, IDN and punycode alike)."""
    seen: dict[str, str] = {}
    for mailbox in mailboxes:
        path = mailbox.envelope()
        key = HeaderAddress(username=mailbox.username, domain=mailbox.ascii_domain).addr_spec.casefold()
        seen.setdefault(key, path)
    return tuple(seen.values())


def _subject(value: str) -> str:
    """The subject as a header can carry it; line breaks and control characters are refused."""
    text = _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else ""
    if has_refused(text.replace("\t", " "), ADDRESS_REFUSED):
        raise ComposeError("The subject must not contain line breaks or control characters.", field="subject")
    return text.strip()


def _id_domain(value: str) -> str:
    """The Message-ID's right-hand side: the caller's domain as given (IDNA when not ASCII)."""
    domain = (value or "").strip()
    if not domain.isascii():
        converted = idna_domain(domain)
        if converted is None:
            raise ValueError("message_id_domain is not a valid domain name")
        domain = converted
    if not domain or not _MSG_ID.fullmatch(f"<x@{domain}>") or "@" in domain:
        raise ValueError("message_id_domain cannot be written in a Message-ID")
    return domain


def _check_header_lines(raw: bytes) -> None:
    """Refuse a message whose header has a line over 998 octets (an unbreakable word in UTF-8 mode)."""
    end = raw.find(b"\r\n\r\n")
    field = ""
    for line in raw[: end if end >= 0 else len(raw)].split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            field = line.split(b":", 1)[0].decode("ascii", "replace").strip().lower()
        if len(line) > MAX_LINE:
            name = _HEADER_FIELDS.get(field, field)
            raise ComposeError(f"The {name} is too long to be written in a mail header.", field=name)


def without_bcc(raw: bytes) -> bytes:
    """The message without its Bcc header field (continuation lines included): what SMTP sends."""
    out: list[bytes] = []
    pos, size, skipping = 0, len(raw), False
    while pos < size:
        newline = raw.find(b"\n", pos)
        end = size if newline < 0 else newline + 1
        line = raw[pos:end]
        if line in (b"\r\n", b"\n"):
            break  # the blank line: the body begins
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                out.append(line)
        else:
            name, colon, _ = line.partition(b":")
            skipping = bool(colon) and name.strip().lower() == b"bcc"
            if not skipping:
                out.append(line)
        pos = end
    return b"".join(out) + raw[pos:]


# --- the MIME tree --------------------------------------------------------------------------------


@dataclass
class _Content:
    """The bodies and attachments a message is built from, once a forward has been merged in.

    Each upload goes with ``strict``: the draft's own are checked (a bad one is the caller's error),
    those taken from a forwarded original are repaired instead (best effort).
    """

    text: str
    html: str
    inline: list[tuple[Upload, bool]] = field(default_factory=list)
    files: list[tuple[Upload, bool]] = field(default_factory=list)


class _Builder:
    """Builds the body tree of one message with one policy."""

    def __init__(self, policy: email_policy.EmailPolicy[EmailMessage]) -> None:
        self.policy = policy

    def part(self) -> MIMEPart:
        """An empty part with the message's policy (MIMEPart: no MIME-Version of its own)."""
        return MIMEPart(policy=self.policy)

    def body(self, draft: Draft) -> MIMEPart:
        """The top-level content: a single part or multipart/mixed."""
        content = _Content(text=_body_text(draft.text), html=_body_text(draft.html))
        content_ids: set[str] = set()
        for upload in draft.attachments:
            if not isinstance(upload, Upload) or not isinstance(upload.data, (bytes, bytearray, memoryview)):
                raise ComposeError("Each attachment must be a file with its bytes.", field="attachments")
            cid = _content_id(upload.content_id, strict=True) if upload.content_id else ""
            if cid:
                if cid.lower() in content_ids:
                    raise ComposeError("Two inline images have the same content_id.", field="attachments")
                content_ids.add(cid.lower())
                content.inline.append((upload, True))
            else:
                content.files.append((upload, True))
        attached: list[MIMEPart] = []
        if draft.forward is not None:
            original = bytes(draft.forward)
            if draft.forward_inline:
                inlined = inline_original(content.text, content.html, original)
                content.text, content.html = inlined.text, inlined.html
                _reattach(content, inlined.attachments, content_ids)
            else:
                attached.append(
                    rfc822_part(original, _filename(eml_name(original), "message/rfc822"), self.policy)
                )
        if not content.html.strip():
            # No html to show them in: inline images become attachments.
            content.files[:0] = content.inline
            content.inline = []
        parts: list[MIMEPart] = []
        main = self.main(content, alone=not (attached or content.files))
        if main is not None:
            parts.append(main)
        parts += attached
        parts += [self.attachment(upload, strict=strict) for upload, strict in content.files]
        if main is not None and len(parts) == 1:
            return main
        return self.multipart("mixed", parts)  # a lone attachment too: never a bare file as the body

    def main(self, content: _Content, *, alone: bool) -> MIMEPart | None:
        """The text part, or the alternative of text and html; None when there is no text to send."""
        has_html = bool(content.html.strip())
        if not has_html and not content.text.strip() and not alone:
            return None  # only attachments or a forwarded message: no empty text part before them
        text = content.text if content.text.strip() or not has_html else html_to_text(content.html)
        text_part = self.part()
        text_part.set_content(text, subtype="plain", charset="utf-8")
        if not has_html:
            return text_part
        html_part = self.part()
        html_part.set_content(content.html, subtype="html", charset="utf-8")
        if content.inline:
            images = [
                self.attachment(upload, strict=strict, inline=True) for upload, strict in content.inline
            ]
            html_part = self.multipart("related", [html_part, *images])
            html_part.set_param("type", "text/html")  # RFC 2387: the type of the root part
        return self.multipart("alternative", [text_part, html_part])

    def multipart(self, subtype: str, parts: list[MIMEPart]) -> MIMEPart:
        """A multipart/<subtype> of these parts."""
        container = self.part()
        container.set_type(f"multipart/{subtype}")
        del container["MIME-Version"]  # set_type adds one; only the top-level message has it
        for part in parts:
            container.attach(part)
        return container

    def attachment(self, upload: Upload, *, strict: bool, inline: bool = False) -> MIMEPart:
        """One upload as a base64 part (or an embedded message); ``strict`` refuses a bad content type."""
        content_type = _content_type(upload.content_type, strict=strict)
        data = bytes(upload.data)
        maintype, _, subtype = content_type.partition("/")
        filename = _filename(upload.filename, content_type)
        if content_type == "message/rfc822":
            return rfc822_part(data, filename, self.policy)
        if maintype == "multipart" or content_type in _UNENCODABLE:
            maintype, subtype = "application", "octet-stream"
        params: dict[str, str] = {"name": filename}  # Content-Type name too: older Outlook reads only that
        charset = content_charset(upload.content_type) if maintype == "text" else None
        if charset and _CHARSET.fullmatch(charset):
            params["charset"] = charset
        cid = _content_id(upload.content_id, strict=strict) if inline else ""
        part = self.part()
        part.set_content(
            data,
            maintype,
            subtype,
            disposition="inline" if inline else "attachment",
            filename=filename,
            cid=f"<{cid}>" if cid else None,
            params=params,
        )
        return part


def _reattach(content: _Content, attachments: tuple[ForwardedAttachment, ...], ids: set[str]) -> None:
    """An inlined original's attachments as uploads; its cid images stay inline when the html goes along."""
    with_html = bool(content.html.strip())
    for attachment in attachments:
        cid = _content_id(attachment.content_id, strict=False) if attachment.content_id else ""
        inline = bool(with_html and cid and cid.lower() not in ids)
        if inline:
            ids.add(cid.lower())
        upload = Upload(
            filename=attachment.filename,
            content_type=attachment.content_type,
            data=attachment.data,
            content_id=cid if inline else "",
        )
        (content.inline if inline else content.files).append((upload, False))


def _body_text(value: str) -> str:
    """Body text as MIME text can carry it: LF line ends, no NUL, no lone surrogates."""
    if not isinstance(value, str) or not value:
        return ""
    text = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return _SURROGATE.sub("\ufffd", text)


def _content_type(value: str, *, strict: bool) -> str:
    """``type/subtype`` in lower case; an empty one is application/octet-stream, a bad one refused."""
    text = (value or "").split(";", 1)[0].strip().lower() if isinstance(value, str) else ""
    if not text:
        return "application/octet-stream"
    if _MIME_TYPE.fullmatch(text):
        return text
    if not strict:
        return "application/octet-stream"
    raise ComposeError("Enter an attachment content type such as application/pdf.", field="attachments")


def _content_id(value: str, *, strict: bool) -> str:
    """A Content-ID without its brackets; a bad one refused (``strict``) or dropped."""
    text = value.strip() if isinstance(value, str) else ""
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if _CONTENT_ID.fullmatch(text) and not any(char in _CONTENT_ID_SPECIALS for char in text):
        return text
    if not strict:
        return ""
    raise ComposeError(
        "Enter a content_id of printable ASCII without spaces or brackets, such as logo@example.com.",
        field="attachments",
    )


def _filename(value: str, content_type: str) -> str:
    """The base name of an upload's file name, without control or bidi characters; never empty."""
    text = value if isinstance(value, str) else ""
    if has_refused(text, _FILENAME_DROPPED):
        text = "".join(char for char in text if unicodedata.category(char) not in _FILENAME_DROPPED)
    name = re.split(r"[/\\]", text)[-1].strip()
    if name in ("", ".", ".."):
        name = "attachment" + (_mime_types().guess_extension(content_type) or "")
    if len(name) > _MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: _MAX_FILENAME - len(extension) - 1] + "." + extension
        else:
            name = name[:_MAX_FILENAME]
    return name


@lru_cache(maxsize=1)
def _mime_types() -> mimetypes.MimeTypes:
    """Python's built-in extension table, not the host's: the same file names on every machine."""
    return mimetypes.MimeTypes()
