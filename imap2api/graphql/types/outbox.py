"""The OutboxMessage type (derived from ``models.OutboxMessagePublic``) and the sendEmail inputs."""

from __future__ import annotations

import strawberry

from imap2api.crud.outbox import as_list
from imap2api.graphql import derive
from imap2api.models import OutboxMessage, OutboxMessagePublic


@derive.output_type(
    OutboxMessagePublic,
    name="OutboxMessage",
    first=("id", "imap_server"),
    ids=("imap_server", "reply_to_email", "forward_email", "email"),
    sources={
        "imap_server": "imap_server_id",
        "reply_to_email": "reply_to_email_id",
        "forward_email": "forward_email_id",
        "email": "email_id",
        "to": lambda row: as_list(row.to),
        "cc": lambda row: as_list(row.cc),
        "bcc": lambda row: as_list(row.bcc),
        "refused": lambda row: as_list(row.refused),
    },
)
class OutboxMessageType:
    """A message sent through the server's SMTP server: queued, sending, sent, failed or cancelled.

    ``error`` and ``errorCode`` say why the last attempt failed (a queued message with attempts is
    waiting for its retry at ``nextAttemptAt``); ``smtpResponse`` is the SMTP server's last answer.
    """


@strawberry.input(name="AttachmentInput", description="A file to attach, its bytes in base64.")
class AttachmentInput:
    filename: str
    content_base64: str = strawberry.field(description="The file's bytes, base64 (RFC 4648, no line breaks).")
    content_type: str = "application/octet-stream"
    content_id: str = strawberry.field(
        default="", description="Set: an inline image, shown where the html says cid:<contentId>."
    )


@strawberry.input(name="SendEmailInput", description="A message to send from one of your IMAP servers.")
class SendEmailInput:
    imap_server: strawberry.ID = strawberry.field(description="The server whose SMTP settings send it.")
    to: list[str] = strawberry.field(
        default_factory=list, description='Addresses, "ann@example.com" or "Ann Example <ann@example.com>".'
    )
    cc: list[str] = strawberry.field(default_factory=list)
    bcc: list[str] = strawberry.field(default_factory=list, description="Sent, not shown to the others.")
    subject: str | None = strawberry.field(
        default=None, description="Null on a reply or forward: the original's, with Re: or Fwd: once."
    )
    text: str = ""
    html: str = ""
    reply_to_email: strawberry.ID | None = strawberry.field(
        default=None,
        description="Answer this email: threading headers, Re:, and its sender when no to/cc/bcc.",
    )
    forward_email: strawberry.ID | None = strawberry.field(
        default=None, description="Forward this email: attached as message/rfc822, or inlined."
    )
    forward_inline: bool = strawberry.field(
        default=False,
        description="Inline the forwarded email's text and attachments instead of attaching it.",
    )
    attachments: list[AttachmentInput] = strawberry.field(default_factory=list)


def to_gql_outbox_message(row: OutboxMessage) -> OutboxMessageType:
    """Convert an OutboxMessage row to its GraphQL type."""
    return derive.to_gql(OutboxMessageType, row)
