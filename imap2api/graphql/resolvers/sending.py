"""Sending mail, and the outbox it goes through (services.sending)."""

from __future__ import annotations

import strawberry
from starlette.concurrency import run_in_threadpool

from imap2api.enums import SendStatus
from imap2api.graphql.context import Context
from imap2api.graphql.derive import gql_enum
from imap2api.graphql.types.outbox import OutboxMessageType, SendEmailInput, to_gql_outbox_message
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.ids import parse_id
from imap2api.services import sending

Info = strawberry.Info[Context, None]
gql_enum(SendStatus)


def outgoing(data: SendEmailInput) -> sending.Outgoing:
    """The service's request from the GraphQL input."""
    return sending.Outgoing(
        imap_server=data.imap_server,
        to=tuple(data.to),
        cc=tuple(data.cc),
        bcc=tuple(data.bcc),
        subject=data.subject,
        text=data.text,
        html=data.html,
        reply_to_email=data.reply_to_email,
        forward_email=data.forward_email,
        forward_inline=data.forward_inline,
        attachments=tuple(
            sending.Attachment(
                filename=item.filename,
                content_type=item.content_type,
                content_base64=item.content_base64,
                content_id=item.content_id,
            )
            for item in data.attachments
        ),
    )


@strawberry.type(description="A message sendEmail queued.")
class SendEmailPayload:
    message: OutboxMessageType
    replayed: bool = strawberry.field(
        description="True: an earlier request with the same idempotencyKey queued it; nothing new was sent."
    )


@strawberry.type
class SendingQuery:
    """Reads of the outbox."""

    @strawberry.field(description="The caller's outgoing messages, newest first.")
    async def outbox_messages(
        self,
        info: Info,
        page: int = 1,
        page_size: int | None = None,
        last_page: bool = False,
        status: SendStatus | None = None,
        imap_server: strawberry.ID | None = None,
    ) -> Page[OutboxMessageType]:
        """One page of the outbox (optionally of one status or server)."""
        result = await info.context.run(
            sending.page,
            number=page,
            size=page_size,
            last=last_page,
            status=status.value if status is not None else None,
            server_id=parse_id(imap_server) if imap_server is not None else None,
        )
        return to_gql_page(result, to_gql_outbox_message)

    @strawberry.field(description="One outgoing message.")
    async def outbox_message(self, info: Info, id: strawberry.ID) -> OutboxMessageType:
        """An outgoing message by id."""
        return to_gql_outbox_message(await info.context.run(sending.get, parse_id(id)))


@strawberry.type
class SendingMutation:
    """Sending, and cancelling a message still queued."""

    @strawberry.mutation(
        description="Queue a message for the server's SMTP server; the answer is queued (see outboxMessage). "
        "The same idempotencyKey again answers the first message and sends nothing."
    )
    async def send_email(
        self, info: Info, input: SendEmailInput, idempotency_key: str | None = None
    ) -> SendEmailPayload:
        """Compose, check the bounds, queue."""
        principal = info.context.principal
        submitted = await run_in_threadpool(
            sending.submit, principal, outgoing(input), idempotency_key=idempotency_key
        )
        return SendEmailPayload(message=to_gql_outbox_message(submitted.message), replayed=submitted.replayed)

    @strawberry.mutation(description="Cancel a queued message (not one being sent, nor a finished one).")
    async def cancel_outbox_message(self, info: Info, id: strawberry.ID) -> OutboxMessageType:
        """Queued → cancelled."""
        return to_gql_outbox_message(await info.context.run(sending.cancel, parse_id(id)))
