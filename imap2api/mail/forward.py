"""A forwarded original in outgoing mail: attached as message/rfc822, or its content inlined.

Pure functions over the stdlib ``email`` package, no I/O; imap2api.mail.compose places what they give
in the message. The decisions:

- **Attached**, the original is message/rfc822 named ``<subject>.eml``, verbatim (line ends made CRLF)
  when it is 7-bit; an 8-bit one is regenerated with its 8-bit headers as RFC 2047 words and its 8-bit
  or overlong parts as base64 of the same bytes (RFC 2046 5.2.1 allows message/rfc822 no encoding of
  its own), and if even that fails it goes as an application/octet-stream ``.eml``.
- **Inlined** (``forward_inline``), its text and html follow a "Forwarded message" header block
  (html-escaped in the html; the original's ``<body>`` content only, its ``<head>`` styles would
  restyle the whole message), its attachments are re-attached (read back here, placed by
  imap2api.mail.compose) and its cid images stay inline.
- A malformed original forwards as far as it can be read.
"""

from __future__ import annotations

import base64
import email
import html as html_lib
import re
from email import policy as email_policy
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from typing import NamedTuple

from imap2api.mail.addresses import MAX_LINE
from imap2api.mail.headers import decode_header, format_addresses, header_text, parse_addresses
from imap2api.mail.html_text import html_to_text
from imap2api.mail.parse import ParsedAttachment, parse_message

__all__ = ["ForwardedAttachment", "Inlined", "eml_name", "inline_original", "rfc822_part"]

_FORWARD_LINE = "---------- Forwarded message ---------"
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
# Regenerating an 8-bit original: 8-bit parts re-encoded, headers refolded only past the hard limit.
_DOWNGRADE_POLICY = email_policy.SMTP.clone(cte_type="7bit", max_line_length=MAX_LINE)


class ForwardedAttachment(NamedTuple):
    """One attachment of an inlined original, its bytes read back; ``content_id`` as the original has it."""

    filename: str
    content_type: str
    data: bytes
    content_id: str


class Inlined(NamedTuple):
    """A draft's text and html with the original appended, and the original's attachments to re-attach."""

    text: str
    html: str
    attachments: tuple[ForwardedAttachment, ...]


# --- attached as message/rfc822 -------------------------------------------------------------------


def eml_name(raw: bytes) -> str:
    """``<subject>.eml`` for a forwarded original ("message.eml" without a subject), not yet cleaned."""
    subject = ""
    try:
        headers = BytesParser().parsebytes(_without_mbox_line(raw), headersonly=True)
        subject = decode_header(next((v for k, v in headers.raw_items() if k.lower() == "subject"), ""))
    except Exception:  # a header the parser cannot take: the default name
        pass
    name = re.sub(r"[/\\]", "-", subject).strip(" .")[:100].strip()
    return (name or "message") + ".eml"


def rfc822_part(raw: bytes, filename: str, policy: email_policy.EmailPolicy[EmailMessage]) -> MIMEPart:
    """An original message as message/rfc822 (as application/octet-stream when it cannot be 7-bit)."""
    text = _seven_bit_message(raw)
    part = MIMEPart(policy=policy)
    if text is None:
        part.set_content(raw, "application", "octet-stream", filename=filename, params={"name": filename})
        return part
    part["Content-Type"] = "message/rfc822"
    part.add_header("Content-Disposition", "attachment", filename=filename)
    # A str payload is written as it is: the original's bytes, not the email package's rewrite.
    part.set_payload(text)
    return part


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
    if len(data) <= MAX_LINE:
        return True
    return max(len(line) for line in data.split(b"\r\n")) <= MAX_LINE


# --- inlined --------------------------------------------------------------------------------------


def inline_original(text: str, html: str, raw: bytes) -> Inlined:
    """The draft's text and html with the original's header block, text and html appended; its attachments."""
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
        quoted_text = html_to_text(original.body_html)
    forwarded = "\n".join(block) + "\n\n" + quoted_text
    own_text = text if text.strip() else ""
    if not own_text and html.strip():
        own_text = html_to_text(html)  # the text alternative must carry the draft's words too
    if html.strip() or original.body_html.strip():
        own_html = html if html.strip() else ""
        if not own_html and own_text.strip():
            own_html = _text_to_html(own_text)
        quoted = _body_inner(original.body_html) if original.body_html.strip() else _text_to_html(quoted_text)
        block_html = "<br>\n".join(html_lib.escape(line) for line in block)
        forwarded_html = f'<div class="forwarded_message">{block_html}<br>\n<br>\n{quoted}</div>'
        html = _append_html(own_html, forwarded_html) if own_html else forwarded_html
    text = own_text.rstrip("\n") + "\n\n" + forwarded if own_text.strip() else forwarded
    attachments = _attachments(tree, original.attachments) if tree is not None else ()
    return Inlined(text=text, html=html, attachments=attachments)


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


def _attachments(tree: Message, attachments: list[ParsedAttachment]) -> tuple[ForwardedAttachment, ...]:
    """The original's attachments with their bytes; one that cannot be read is left out."""
    found: list[ForwardedAttachment] = []
    for attachment in attachments:
        try:
            part = _part_at(tree, attachment.section)
            data = _part_bytes(part) if part is not None else None
        except Exception:  # one unreadable part must not lose the others
            data = None
        if data is None:
            continue
        found.append(
            ForwardedAttachment(
                filename=attachment.filename or "",
                content_type=attachment.content_type,
                data=data,
                content_id=attachment.content_id or "",
            )
        )
    return tuple(found)


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
