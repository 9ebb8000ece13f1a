"""The Email, Attachment, Statistics and page types."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import strawberry

from imap2api.config import settings
from imap2api.graphql.budget import current_budget
from imap2api.graphql.context import Context
from imap2api.graphql.cost import ListSize

# The parser keeps at most this many parts of a message (imap2api.mail.parse), so no email has more.
MAX_ATTACHMENTS = 1000
# How many members a thread field returns (thread and emailThread: the whole thread, up to the maximum).
THREAD_EMAILS = ListSize(
    "limit", default=lambda: settings.page_size, maximum=lambda: settings.max_thread_emails
)
WHOLE_THREAD = ListSize(
    "limit", default=lambda: settings.max_thread_emails, maximum=lambda: settings.max_thread_emails
)
ATTACHMENTS = ListSize("limit", default=lambda: 100, maximum=lambda: MAX_ATTACHMENTS)


@strawberry.type(name="Attachment")
class AttachmentType:
    """Metadata of an attachment (its content stays on the IMAP server)."""

    id: strawberry.ID
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    email_id: strawberry.Private[int] = 0

    @strawberry.field(description="Where its decoded bytes download (REST, relative to this site).")
    def download_url(self) -> str:
        """``/api/emails/{email}/attachments/{id}/``."""
        return f"/api/emails/{self.email_id}/attachments/{self.id}/"


_CID = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)


def resolve_cids(html: str, urls: dict[str, str]) -> str:
    """``cid:`` references (RFC 2392) replaced by the URL of the part with that Content-ID, where known."""
    by_id = {content_id.strip().strip("<>").lower(): url for content_id, url in urls.items()}

    def replace(match: re.Match[str]) -> str:
        return by_id.get(unquote(match.group(1)).strip("<>").lower(), match.group(0))

    return _CID.sub(replace, html)


def to_gql_attachment(row: Any) -> AttachmentType:
    """Convert an Attachment row."""
    return AttachmentType(
        email_id=row.email_id,
        id=strawberry.ID(str(row.id)),
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        content_id=row.content_id,
        inline=row.inline,
    )


@strawberry.type(name="Email")
class EmailType:
    """A mirrored message. Bodies, attachments and thread members are loaded only when asked for."""

    id: strawberry.ID
    imap_server: strawberry.ID
    message_id: str
    subject: str
    sender: str
    sender_name: str
    recipient: str
    recipient_names: str
    cc: str
    date: datetime
    internal_date: datetime | None
    folder: str
    thread_id: str
    in_reply_to: str
    references: list[str]
    flags: list[str]
    seen: bool
    flagged: bool
    answered: bool
    size: int
    has_attachments: bool
    created_at: datetime
    updated_at: datetime
    _bodies: strawberry.Private[tuple[str, str] | None] = None

    @strawberry.field(
        description="Where the original message downloads as .eml (REST, relative to this site)."
    )
    def raw_url(self) -> str:
        """``/api/emails/{id}/raw/``."""
        return f"/api/emails/{self.id}/raw/"

    @strawberry.field(description="How many emails the thread holds, this one included.")
    async def thread_count(self, info: strawberry.Info[Context, None]) -> int:
        """Counted for the whole page in one query."""
        return await info.context.loaders.thread_count.load(self.thread_id)

    @strawberry.field(description="The text/plain body.")
    async def body_text(self, info: strawberry.Info[Context, None]) -> str:
        """Loaded in one query for the whole page, only when selected; spends the body budget."""
        return await self._body(info, 0)

    @strawberry.field(
        description="The text/html body. cidUrls: cid: references to inline parts (multipart/related "
        "images) rewritten to their download URLs, so a browser can show them."
    )
    async def body_html(self, info: strawberry.Info[Context, None], cid_urls: bool = False) -> str:
        """Loaded in one query for the whole page, only when selected; spends the body budget."""
        html = await self._body(info, 1)
        if not cid_urls or "cid:" not in html.lower():
            return html
        rows = await info.context.loaders.attachments.load(int(self.id))
        return resolve_cids(
            html, {row.content_id: to_gql_attachment(row).download_url() for row in rows if row.content_id}
        )

    async def _body(self, info: strawberry.Info[Context, None], index: int) -> str:
        """The text (0) or HTML (1) body, counted against the operation's body budget."""
        body = (self._bodies or await info.context.loaders.bodies.load(int(self.id)))[index]
        current_budget().spend(len(body))
        return body

    @strawberry.field(
        description="Attachment metadata, in stored order: the first `limit` (default 100, "
        f"at most {MAX_ATTACHMENTS}, as many as a message may have).",
        metadata=ATTACHMENTS.metadata,
    )
    async def attachments(
        self, info: strawberry.Info[Context, None], limit: int | None = None
    ) -> list[AttachmentType]:
        """The attachments of this email."""
        rows = await info.context.loaders.attachments.load(int(self.id))
        return [to_gql_attachment(row) for row in rows[: ATTACHMENTS.clamp(limit)]]

    @strawberry.field(
        description="The other emails of this thread, in date order: the first `limit` "
        "(default IMAP2API_PAGE_SIZE, at most IMAP2API_MAX_THREAD_EMAILS).",
        metadata=THREAD_EMAILS.metadata,
    )
    async def thread_emails(
        self, info: strawberry.Info[Context, None], limit: int | None = None
    ) -> list[EmailType]:
        """The emails sharing this thread id, except this one."""
        size = THREAD_EMAILS.clamp(limit)
        # One more than asked: this email may be among the first members, and is left out.
        members = await info.context.loaders.thread_emails.load((self.thread_id, size + 1))
        return [to_gql_email(row) for row in members if str(row.id) != str(self.id)][:size]


def to_gql_email(row: Any) -> EmailType:
    """Convert an Email row (a full model, or a list row without bodies)."""
    full = hasattr(row, "body_text") and hasattr(row, "body_html")
    return EmailType(
        id=strawberry.ID(str(row.id)),
        imap_server=strawberry.ID(str(row.imap_server_id)),
        message_id=row.message_id,
        subject=row.subject,
        sender=row.sender,
        sender_name=row.sender_name,
        recipient=row.recipient,
        recipient_names=row.recipient_names,
        cc=row.cc,
        date=row.date,
        internal_date=row.internal_date,
        folder=row.folder,
        thread_id=row.thread_id,
        in_reply_to=row.in_reply_to,
        references=row.references.split() if row.references else [],
        flags=row.flags.split() if row.flags else [],
        seen=row.seen,
        flagged=row.flagged,
        answered=row.answered,
        size=row.size,
        has_attachments=row.has_attachments,
        created_at=row.created_at,
        updated_at=row.updated_at,
        _bodies=(row.body_text, row.body_html) if full else None,
    )


@strawberry.type
class FolderCount:
    """How many emails one folder holds."""

    name: str
    count: int


@strawberry.type
class Statistics:
    """Totals over the caller's mirror (or one server of it)."""

    total_emails: int
    total_threads: int
    folders: list[FolderCount]
