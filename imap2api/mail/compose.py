"""Composing outgoing mail: a draft (addresses, text, html, uploads, a forwarded original) to RFC 5322 bytes.

Pure functions over the stdlib ``email`` package, no I/O; the SMTP transport, the outbox and the API
build on them. The decisions:

- **Addresses** are parsed with the ``email`` package's RFC 5322 parser; anything it reports a defect
  for is refused (``ComposeError`` naming the request field), except a non-ASCII local part, which
  RFC 6532 allows. One address per item: ``Doe, Ann <ann@example.com>`` is refused, as it reads as two
  (quote the name). Groups, domain literals (``ann@[192.0.2.1]``), single-label domains
  (``ann@localhost``: a typo far more often than a real recipient) and numeric top-level labels are
  refused; control characters always are (CR/LF would inject headers). The domain is normalised with
  UTS #46 (lower case, full-width forms folded) and kept in Unicode in ``Address.email``;
  ``ascii_email()`` gives its IDNA form. Addr-specs over 254 octets are refused: SMTP paths cannot
  carry them (RFC 5321 4.5.3.1.3).
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
  Gmail does; tags stripped, links kept as ``text <url>``; imap2api.mail has no such helper, so it is
  a private one here); the html becomes multipart/related when
  uploads carry a Content-ID (without html they are plain attachments: nothing could show them
  inline); multipart/mixed when there are attachments or a forwarded original. Text is UTF-8, line
  ends normalised, NUL dropped (it cannot travel in MIME text), lone surrogates (JSON allows them)
  replaced; the ``email`` package picks 7bit, quoted-printable or base64, whichever is 7-bit safe and
  smallest.
- **Attachments** are base64; the file name keeps its base name only, without control or bidi
  characters (``invoice<U+202E>fdp.exe`` would show as ``invoiceexe.pdf``), RFC 2231-encoded when
  non-ASCII. The content type must be ``type/subtype`` (parameters other than a text charset are
  dropped; an empty one means application/octet-stream). multipart/* and the message/* types that
  cannot be base64 (message/partial, message/external-body, message/delivery-status) go as
  application/octet-stream; message/rfc822 is embedded like a forwarded original. A ``content_id``
  must be printable ASCII (brackets optional) and unique in the draft.
- **A forwarded original** is attached as message/rfc822 named ``<subject>.eml``, verbatim (line ends
  made CRLF) when it is 7-bit; an 8-bit one is regenerated with its 8-bit headers as RFC 2047 words and
  its 8-bit or overlong parts as base64 of the same bytes (RFC 2046 5.2.1 allows message/rfc822 no
  encoding of its own), and if even that fails it goes as an application/octet-stream ``.eml``. It
  comes first after the draft's text; a forward without text is a multipart/mixed of it alone, never
  a bare message/rfc822 body. Inlined (``forward_inline``), its text and html follow a
  "Forwarded message" header block (html-escaped in the html; the original's ``<body>`` content only,
  its ``<head>`` styles would restyle the whole message), its attachments are re-attached and its
  cid images stay inline. A malformed original forwards as far as it can be read.
- **Replies**: ``reply_subject``/``forward_subject`` add the prefix once, keeping an existing one as
  written (``Re:``, ``RE :``, ``Re[2]:``; ``Fwd:``, ``Fw:``); a blank subject gives ``Re:``/``Fwd:``,
  without the trailing space folding would drop. ``reply_threading`` builds In-Reply-To and References
  per RFC 5322 3.6.4, bounded to ``MAX_REFERENCES`` ids (the root and the 19 nearest); ``compose``
  bounds the References it is given the same way, and refuses a value that is not one Message-ID.
"""

from __future__ import annotations

import base64
import email
import html as html_lib
import io
import mimetypes
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy as email_policy
from email.errors import NonASCIILocalPartDefect
from email.generator import BytesGenerator
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import AddressHeader, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from email.policy import Policy
from email.utils import format_datetime
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any, NamedTuple

import idna

from imap2api.mail.headers import (
    clean,
    content_charset,
    decode_header,
    format_addresses,
    header_text,
    parse_addresses,
)
from imap2api.mail.parse import ParsedAttachment, parse_message
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
_MAX_LINE = 998  # octets of a line, CRLF excluded (RFC 5322 2.1.1)
_MAX_ADDR_SPEC = 254  # octets: an SMTP path is 256 with its angle brackets (RFC 5321 4.5.3.1.3)
_MAX_FILENAME = 200  # characters; file systems allow 255 bytes, and a few go to the extension
_FORWARD_LINE = "---------- Forwarded message ---------"

_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MIME_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MIME_TYPE = re.compile(rf"({_MIME_TOKEN})/({_MIME_TOKEN})")
_CHARSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,39}")
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,990}>")  # printable ASCII, no "<" or ">" inside
_CONTENT_ID = re.compile(r"[\x21-\x7e]{1,250}")
_CONTENT_ID_SPECIALS = frozenset('<>()"\\[],;: ')
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_REPLY_PREFIX = re.compile(r"re\s*(?:\[\d{1,4}\]|\(\d{1,4}\))?\s*:", re.IGNORECASE)
_FORWARD_PREFIX = re.compile(r"fwd?\s*:", re.IGNORECASE)
# Unicode categories never allowed in an address and dropped from file names: controls (CR/LF among
# them), line and paragraph separators, surrogates; file names also lose format characters (bidi).
_ADDRESS_REFUSED = frozenset({"Cc", "Zl", "Zp", "Cs"})
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
# Regenerating an 8-bit original: 8-bit parts re-encoded, headers refolded only past the hard limit.
_DOWNGRADE_POLICY = email_policy.SMTP.clone(cte_type="7bit", max_line_length=_MAX_LINE)


class ComposeError(ValueError):
    """A draft that cannot become a message; ``field`` names the request field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Address:
    """A mailbox: display name ("" if none) and addr-spec (non-ASCII local part and IDN domain allowed)."""

    name: str
    email: str

    def ascii_email(self) -> str | None:
        """The address with its domain in IDNA form (punycode); None when the local part is not ASCII."""
        local, _, domain = self.email.rpartition("@")
        if not local.isascii():
            return None
        ascii_domain = _ascii_domain(domain)
        return f"{local}@{ascii_domain}" if ascii_domain is not None else None


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


class _Mailbox(NamedTuple):
    """One checked address, in the pieces the header writer takes."""

    name: str
    username: str  # unquoted local part
    domain: str  # lower case, Unicode (U-labels) when the address was typed so
    ascii_domain: str  # A-labels

    @property
    def address(self) -> Address:
        """The public form."""
        spec = HeaderAddress(username=self.username, domain=self.domain).addr_spec
        return Address(name=self.name, email=spec)

    @property
    def utf8(self) -> bool:
        """Whether the local part needs RFC 6532 (SMTPUTF8)."""
        return not self.username.isascii()

    def envelope(self) -> str:
        """The SMTP path: IDNA domain when the local part allows an ASCII address at all."""
        domain = self.domain if self.utf8 else self.ascii_domain
        return HeaderAddress(username=self.username, domain=domain).addr_spec

    def header(self, utf8: bool) -> HeaderAddress:
        """The header form: Unicode domains only in a UTF-8 message."""
        domain = self.domain if utf8 else self.ascii_domain
        return HeaderAddress(display_name=self.name, username=self.username, domain=domain)


# --- addresses ------------------------------------------------------------------------------------


def parse_address(value: str, *, field: str) -> Address:
    """One address (``ann@example.com``, ``Ann <ann@example.com>``...) checked and normalised."""
    return _parse_mailbox(value, field).address


def _parse_mailbox(value: str, field: str) -> _Mailbox:
    """The checked pieces of one address; raises ComposeError naming ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise ComposeError("Enter an email address, such as ann@example.com.", field=field)
    if _has_refused(value, _ADDRESS_REFUSED):  # before stripping: "a@b.c\n" is refused too
        raise ComposeError(
            "An email address must not contain line breaks or control characters.", field=field
        )
    text = value.strip()
    if len(text.encode("utf-8")) > _MAX_LINE:
        raise ComposeError(f"Ensure each address has no more than {_MAX_LINE} characters.", field=field)
    if "@" not in text:
        raise ComposeError("Enter a valid email address, such as ann@example.com: it has no @.", field=field)
    invalid = ComposeError("Enter a valid email address, such as Ann <ann@example.com>.", field=field)
    try:
        header = _REGISTRY("to", text)
        if not isinstance(header, AddressHeader):
            raise invalid
        groups, addresses = header.groups, header.addresses
        defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    except Exception:  # the parser has a few IndexErrors on truncated input ("ann@")
        raise invalid from None
    if len(addresses) > 1 or (len(groups) > 1 and addresses):
        raise ComposeError(
            "Enter one address per entry; quote a name that contains a comma, as in "
            '"Doe, Ann" <ann@example.com>.',
            field=field,
        )
    if defects or len(addresses) != 1 or any(group.display_name is not None for group in groups):
        raise invalid
    found = addresses[0]
    if not found.username or not found.domain:
        raise invalid
    if found.domain.startswith("["):
        raise ComposeError(
            "Enter an address at a domain name; IP address literals are not accepted.", field=field
        )
    domain, ascii_domain = _domain(found.domain, field)
    mailbox = _Mailbox(found.display_name.strip(), found.username, domain, ascii_domain)
    if len(mailbox.envelope().encode("utf-8")) > _MAX_ADDR_SPEC:
        raise ComposeError(f"Ensure the address has no more than {_MAX_ADDR_SPEC} characters.", field=field)
    return mailbox


def _domain(value: str, field: str) -> tuple[str, str]:
    """(Unicode form, IDNA form) of a mail domain, both lower case; raises ComposeError."""
    invalid = ComposeError(
        f"Enter a valid domain after the @, such as example.com (in {field}).", field=field
    )
    try:
        mapped = idna.uts46_remap(value, std3_rules=True, transitional=False)
        ascii_domain = idna.encode(mapped).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise invalid from None
    labels = ascii_domain.split(".")
    if (
        len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_LDH_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise invalid
    return (mapped if not mapped.isascii() else ascii_domain), ascii_domain


def _ascii_domain(domain: str) -> str | None:
    """A domain in A-labels, None when it is not a valid name."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(idna.uts46_remap(domain, std3_rules=True, transitional=False)).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _checked(address: Address, field: str) -> _Mailbox:
    """An Address from the caller, checked again: it may have been built without parse_address."""
    if not isinstance(address, Address):
        raise ComposeError("Enter an email address, such as ann@example.com.", field=field)
    mailbox = _parse_mailbox(address.email, field)
    if mailbox.name:  # the email held a whole "Name <addr>": it belongs in two fields
        raise ComposeError("Enter the address alone, such as ann@example.com.", field=field)
    name = address.name if isinstance(address.name, str) else ""
    if _has_refused(name, _ADDRESS_REFUSED):
        raise ComposeError("A display name must not contain line breaks or control characters.", field=field)
    return mailbox._replace(name=" ".join(name.split()))


def _has_refused(text: str, categories: frozenset[str]) -> bool:
    """Whether ``text`` holds a character of one of these Unicode categories."""
    if text.isprintable():  # the common case, in C; only non-printable characters need a look
        return False
    return any(unicodedata.category(char) in categories for char in text if not char.isprintable())


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
    sender = _checked(draft.sender, "sender")
    lists = {name: [_checked(item, name) for item in getattr(draft, name)] for name in ("to", "cc", "bcc")}
    reply_to = [_checked(item, "reply_to") for item in draft.reply_to]
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


def _recipients(mailboxes: list[_Mailbox]) -> tuple[str, ...]:
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
    if _has_refused(text.replace("\t", " "), _ADDRESS_REFUSED):
        raise ComposeError("The subject must not contain line breaks or control characters.", field="subject")
    return text.strip()


def _id_domain(value: str) -> str:
    """The Message-ID's right-hand side: the caller's domain as given (IDNA when not ASCII)."""
    domain = (value or "").strip()
    if not domain.isascii():
        converted = _ascii_domain(domain)
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
        if len(line) > _MAX_LINE:
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
                _merge_forward(content, original, content_ids)
            else:
                attached.append(self.message_part(original, _eml_name(original)))
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
        text = content.text if content.text.strip() or not has_html else _html_to_text(content.html)
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
            return self.message_part(data, filename)
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

    def message_part(self, raw: bytes, filename: str) -> MIMEPart:
        """An original message as message/rfc822 (as application/octet-stream when it cannot be 7-bit)."""
        text = _seven_bit_message(raw)
        part = self.part()
        if text is None:
            part.set_content(raw, "application", "octet-stream", filename=filename, params={"name": filename})
            return part
        part["Content-Type"] = "message/rfc822"
        part.add_header("Content-Disposition", "attachment", filename=filename)
        # A str payload is written as it is: the original's bytes, not the email package's rewrite.
        part.set_payload(text)
        return part


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
    if _has_refused(text, _FILENAME_DROPPED):
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


def _eml_name(raw: bytes) -> str:
    """``<subject>.eml`` for a forwarded original ("message.eml" without a subject)."""
    subject = ""
    try:
        headers = BytesParser().parsebytes(_without_mbox_line(raw), headersonly=True)
        subject = decode_header(next((v for k, v in headers.raw_items() if k.lower() == "subject"), ""))
    except Exception:  # a header the parser cannot take: the default name
        pass
    name = re.sub(r"[/\\]", "-", subject).strip(" .")[:100].strip()
    return _filename((name or "message") + ".eml", "message/rfc822")


def _seven_bit_message(raw: bytes) -> str | None:
    """The message as 7-bit text, CRLF line ends: verbatim if it is, else re-encoded; None if impossible."""
    data = _crlf(_without_mbox_line(raw))
    if _is_seven_bit(data):
        return data.decode("ascii")
    try:
        tree = email.message_from_bytes(data)
        for part in tree.walk():
            _downgrade(part)
        data = _crlf(tree.as_bytes(policy=_DOWNGRADE_POLICY))
    except Exception:  # the email package fails on some malformed messages
        return None
    return data.decode("ascii") if _is_seven_bit(data) else None


def _downgrade(part: Message) -> None:
    """One part made 7-bit in place: 8-bit headers as RFC 2047 words, 8-bit or overlong content as base64."""
    items = list(part.raw_items())
    if any(not value.isascii() for _, value in items):
        fixed = [(name, value if value.isascii() else _encoded_header(name, value)) for name, value in items]
        for name in {name for name, _ in items}:
            del part[name]
        for name, value in fixed:
            part[name] = value
    if part.is_multipart():
        # The text around the parts, which MIME readers never show: 8-bit bytes become "?".
        if part.preamble and not part.preamble.isascii():
            part.preamble = part.preamble.encode("ascii", "replace").decode("ascii")
        if part.epilogue and not part.epilogue.isascii():
            part.epilogue = part.epilogue.encode("ascii", "replace").decode("ascii")
        return
    payload = part.get_payload()
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte in ("base64", "quoted-printable") and isinstance(payload, str) and payload.isascii():
        safe = _is_seven_bit(_crlf(payload.encode("ascii")))
    else:
        data = part.get_payload(decode=True)
        safe = not isinstance(data, bytes) or _is_seven_bit(_crlf(data))
    if not safe:
        # The bytes as they are, base64: the charset label (or its absence) keeps its meaning.
        data = part.get_payload(decode=True)
        del part["Content-Transfer-Encoding"]
        part.set_payload(base64.encodebytes(data if isinstance(data, bytes) else b"").decode("ascii"))
        part["Content-Transfer-Encoding"] = "base64"


def _encoded_header(name: str, value: str) -> str:
    """A raw 8-bit header value decoded (UTF-8, else a legacy charset) and written with RFC 2047 words."""
    try:
        header = _DOWNGRADE_POLICY.header_factory(name, header_text(value))
        folded = str(header.fold(policy=_DOWNGRADE_POLICY))
    except Exception:  # left as it is: the generator then writes unknown-8bit words
        return value
    return folded.split(":", 1)[1].strip()


def _without_mbox_line(raw: bytes) -> bytes:
    """Without an mbox ``From `` separator line, as the parser reads it."""
    if raw.startswith(b"From "):
        end = raw.find(b"\n")
        return raw[end + 1 :] if end >= 0 else b""
    return raw


def _crlf(data: bytes) -> bytes:
    """CRLF line ends throughout (SMTP's; a bare CR or LF cannot be sent)."""
    return _LINE_ENDS.sub(b"\r\n", data)


def _is_seven_bit(data: bytes) -> bool:
    """ASCII without NUL, every line at most 998 octets (CRLF line ends assumed)."""
    if not data.isascii() or b"\x00" in data:
        return False
    if len(data) <= _MAX_LINE:
        return True
    return max(len(line) for line in data.split(b"\r\n")) <= _MAX_LINE


# --- forwarding inline ----------------------------------------------------------------------------


def _merge_forward(content: _Content, raw: bytes, content_ids: set[str]) -> None:
    """Append the original's header block, text, html and attachments to the draft's content."""
    original = parse_message(raw)
    try:
        tree: Message | None = email.message_from_bytes(_without_mbox_line(raw))
    except Exception:  # absurd nesting: the bodies parse_message read are still forwarded
        tree = None
    date, cc = _date_and_cc(tree)
    block = [
        _FORWARD_LINE,
        "From: " + format_addresses([(original.sender_name, original.sender)] if original.sender else []),
        "Date: " + date,
        "Subject: " + original.subject,
        "To: " + original.recipient_names,
    ]
    if cc:
        block.append("Cc: " + cc)
    quoted_text = original.body_text
    if not quoted_text.strip() and original.body_html.strip():
        quoted_text = _html_to_text(original.body_html)
    forwarded = "\n".join(block) + "\n\n" + quoted_text
    own_text = content.text if content.text.strip() else ""
    if not own_text and content.html.strip():
        own_text = _html_to_text(content.html)  # the text alternative must carry the draft's words too
    if content.html.strip() or original.body_html.strip():
        own_html = content.html if content.html.strip() else ""
        if not own_html and own_text.strip():
            own_html = _text_to_html(own_text)
        quoted = _body_inner(original.body_html) if original.body_html.strip() else _text_to_html(quoted_text)
        block_html = "<br>\n".join(html_lib.escape(line) for line in block)
        forwarded_html = f'<div class="forwarded_message">{block_html}<br>\n<br>\n{quoted}</div>'
        content.html = _append_html(own_html, forwarded_html) if own_html else forwarded_html
    content.text = own_text.rstrip("\n") + "\n\n" + forwarded if own_text.strip() else forwarded
    if tree is not None:
        _reattach(content, tree, original.attachments, content_ids)


def _date_and_cc(tree: Message | None) -> tuple[str, str]:
    """The original's Date as written and its Cc for display, from the raw values (8-bit ones too)."""
    if tree is None:
        return "", ""
    date = ""
    cc: list[str] = []
    for name, value in tree.raw_items():
        key = name.lower()
        if key == "date" and not date:
            date = decode_header(value)
        elif key == "cc":
            cc.append(value)
    return date, format_addresses(parse_addresses(cc))


def _reattach(content: _Content, tree: Message, attachments: list[ParsedAttachment], ids: set[str]) -> None:
    """The original's attachments as uploads; its cid images stay inline when the html goes along."""
    with_html = bool(content.html.strip())
    for attachment in attachments:
        try:
            part = _part_at(tree, attachment.section)
            data = _part_bytes(part) if part is not None else None
        except Exception:  # one unreadable part must not lose the others
            data = None
        if data is None:
            continue
        cid = _content_id(attachment.content_id or "", strict=False) if attachment.content_id else ""
        inline = bool(with_html and cid and cid.lower() not in ids)
        if inline:
            ids.add(cid.lower())
        upload = Upload(
            filename=attachment.filename or "",
            content_type=attachment.content_type,
            data=data,
            content_id=cid if inline else "",
        )
        (content.inline if inline else content.files).append((upload, False))


def _part_at(tree: Message, section: str) -> Message | None:
    """The part at an IMAP section number (``2.1``), as ``parse_message`` numbers them."""
    node = tree
    for number in section.split("."):
        payload = node.get_payload()
        if node.is_multipart() and node.get_content_maintype() != "message" and isinstance(payload, list):
            index = int(number) - 1
            child = payload[index] if 0 <= index < len(payload) else None
            if not isinstance(child, Message):
                return None
            node = child
        elif number != "1":
            return None  # a leaf's only section is its own body, "1"
    return node


def _part_bytes(part: Message) -> bytes | None:
    """A leaf's decoded content; for message/* (parsed into a list of blocks) the body as written."""
    if isinstance(part.get_payload(), list):
        # The part regenerated, its own headers cut off: a delivery-status has several header blocks.
        written = part.as_bytes()
        end = written.find(b"\n\n")
        return written[end + 2 :] if end >= 0 else None
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else None


def _body_inner(html: str) -> str:
    """The content of an html document's ``<body>``; the whole text when it has none."""
    lower = html.lower()
    start = lower.find("<body")
    if start < 0:
        return html
    opened = html.find(">", start)
    end = lower.rfind("</body")
    if opened < 0:
        return html
    return html[opened + 1 : end if end > opened else len(html)]


def _append_html(html: str, extra: str) -> str:
    """``extra`` added at the end of the html's body (before ``</body>`` when it has one)."""
    end = html.lower().rfind("</body")
    if end < 0:
        return html + "\n" + extra
    return html[:end] + extra + "\n" + html[end:]


def _text_to_html(text: str) -> str:
    """Plain text as html: escaped, line breaks kept."""
    return "<div>" + html_lib.escape(text).replace("\n", "<br>\n") + "</div>"


# --- html to text ---------------------------------------------------------------------------------

_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})  # a blank line around
_BLOCK_TAGS = _PARAGRAPH_TAGS | frozenset(
    {"address", "article", "aside", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer"}
    | {"form", "header", "hr", "main", "nav", "ol", "pre", "section", "table", "tbody", "thead"}
    | {"tfoot", "tr", "ul"}  # not li: its "- " opens a line, and a closing one adds none
)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "svg"})
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr", "source"})
_SPACES = re.compile(r"[ \t\f\v\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    """Collects the visible text of an html document, with line breaks where blocks end."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0  # depth inside script, style and the like
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # (href, position in out) of the open <a> elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Line breaks for blocks, "- " for list items, alt text for images, link targets noted."""
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif self.skipping:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "hr":
            self.out.append("\n---\n")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt") or ""
            if alt.strip():
                self.out.append(alt)
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")
        if tag == "pre" and not self.skipping:
            self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """``<br/>`` and the like: a start tag that opens nothing."""
        if tag in _SKIPPED_TAGS:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        """Close blocks with a line break; a link whose text is not its address gets `` <url>``."""
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif self.skipping or tag in _VOID_TAGS:
            return
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href.lower().startswith(("http://", "https://")) and href != label:
                self.out.append(f" <{href}>")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n\n" if tag in _PARAGRAPH_TAGS else "\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        """Visible text; outside <pre> whitespace collapses as a browser collapses it."""
        if self.skipping:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def _html_to_text(html: str) -> str:
    """A plain-text rendering of html for the text/plain alternative: tags stripped, blocks on lines."""
    try:
        parser = _TextExtractor()
        parser.feed(html)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # HTMLParser is lenient, but a last resort costs nothing
        text = html_lib.unescape(re.sub(r"<[^>]*>", " ", html))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"
