"""Queries and mutations on webhooks and their deliveries."""

from __future__ import annotations

import strawberry

from imap2api.graphql.context import Context
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.graphql.types.webhook import (
    WebhookDeliveryType,
    WebhookInput,
    WebhookType,
    WebhookWithSecretType,
    to_gql_webhook,
    to_gql_webhook_delivery,
    webhook_input_fields,
)
from imap2api.ids import parse_id
from imap2api.services import webhooks

Info = strawberry.Info[Context, None]


@strawberry.type
class WebhookQuery:
    """Reads of webhooks and deliveries."""

    @strawberry.field(description="The caller's webhooks, oldest first.")
    async def webhooks(
        self, info: Info, page: int = 1, page_size: int | None = None, last_page: bool = False
    ) -> Page[WebhookType]:
        """One page of webhooks (``lastPage``: the last one, whatever ``page`` says)."""
        result = await info.context.run(webhooks.page, number=page, size=page_size, last=last_page)
        return to_gql_page(result, to_gql_webhook)

    @strawberry.field(description="One of the caller's webhooks.")
    async def webhook(self, info: Info, id: strawberry.ID) -> WebhookType:
        """A webhook by id."""
        return to_gql_webhook(await info.context.run(webhooks.get, parse_id(id)))

    @strawberry.field(description="Every delivery attempt of a webhook, newest first.")
    async def webhook_deliveries(
        self,
        info: Info,
        webhook_id: strawberry.ID,
        page: int = 1,
        page_size: int | None = None,
        last_page: bool = False,
    ) -> Page[WebhookDeliveryType]:
        """One page of attempts (status code, duration, response excerpt, error)."""
        result = await info.context.run(
            webhooks.deliveries, parse_id(webhook_id), number=page, size=page_size, last=last_page
        )
        return to_gql_page(result, to_gql_webhook_delivery)


@strawberry.type
class WebhookMutation:
    """Writes of webhooks, and manual sends."""

    @strawberry.mutation(description="Add a webhook; the answer carries its signing secret, shown only now.")
    async def create_webhook(self, info: Info, input: WebhookInput) -> WebhookWithSecretType:
        """Create a webhook (default: every event type, every server, active)."""
        webhook, secret = await info.context.run(webhooks.create, webhook_input_fields(input))
        return WebhookWithSecretType(webhook=to_gql_webhook(webhook), secret=secret)

    @strawberry.mutation(description="Change a webhook; only the given fields change.")
    async def update_webhook(self, info: Info, id: strawberry.ID, input: WebhookInput) -> WebhookType:
        """Partially update a webhook."""
        webhook = await info.context.run(webhooks.update, parse_id(id), webhook_input_fields(input))
        return to_gql_webhook(webhook)

    @strawberry.mutation(description="Remove a webhook and its delivery history.")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> bool:
        """Delete a webhook."""
        await info.context.run(webhooks.delete, parse_id(id))
        return True

    @strawberry.mutation(description="Replace a webhook's signing secret; the new one is shown only now.")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookWithSecretType:
        """Rotate the secret: every attempt from now on is signed with the new one."""
        webhook, secret = await info.context.run(webhooks.rotate_secret, parse_id(id))
        return WebhookWithSecretType(webhook=to_gql_webhook(webhook), secret=secret)

    @strawberry.mutation(description="Send a webhook.test event now; returns the pending delivery.")
    async def test_webhook(self, info: Info, id: strawberry.ID) -> WebhookDeliveryType:
        """Queue a test delivery (retried like any other)."""
        return to_gql_webhook_delivery(await info.context.run(webhooks.send_test, parse_id(id)))

    @strawberry.mutation(description="Send an event of a past delivery again, as a new attempt.")
    async def redeliver(self, info: Info, delivery_id: strawberry.ID) -> WebhookDeliveryType:
        """Queue a new attempt of the same event to the same webhook (same event id)."""
        return to_gql_webhook_delivery(await info.context.run(webhooks.redeliver, parse_id(delivery_id)))
