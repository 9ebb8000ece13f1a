"""Building test messages as raw bytes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


def make_message(
    *,
    subject: str = "Hello",
    sender: str = "Alice <alice@example.com>",
    to: str = "Bob <bob@example.org>",
    cc: str | None = None,
    body: str = "Hello Bob,\nhow are you?\n",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    date: datetime | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
) -> bytes:
    """A well-formed message; ``attachments`` holds (filename, mime type, content)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Date"] = format_datetime(date or datetime(2024, 11, 27, 12, 0, tzinfo=UTC))
    message["Message-ID"] = message_id or make_msgid(idstring=secrets.token_hex(4), domain="example.com")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, mime, content in attachments:
        maintype, subtype = mime.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of a raw message."""
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise ValueError("no Message-ID")
