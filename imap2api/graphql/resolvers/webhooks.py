"""Queries and mutations on webhooks and their deliveries."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import webhooks as crud_webhooks
from imap2api.crud.common import clamp_page_size
from imap2api.errors import NotFound, ValidationFailed
from imap2api.graphql.context import Context
from imap2api.graphql.ids import parse_id
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
from imap2api.models import Webhook, WebhookDelivery
from imap2api.webhooks.signing import new_secret
from imap2api.webhooks.validation import validate_webhook

Info = strawberry.Info[Context, None]


def _check_server(session: Session, *, owner_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Turn the ``imap_server`` ID into one of the caller's server ids (or a field error)."""
    value = data.get("imap_server")
    if value is None:
        return data
    try:
        server_id = parse_id(value)
        crud_servers.get_server(session, owner_id=owner_id, server_id=server_id)
    except NotFound:
        raise ValidationFailed({"imap_server": [f'Invalid pk "{value}" - object does not exist.']}) from None
    return {**data, "imap_server": server_id}


def _create(session: Session, *, owner_id: int, data: dict[str, Any]) -> tuple[Webhook, str]:
    """Validate and create in one transaction; returns the webhook and its new secret."""
    clean = _check_server(session, owner_id=owner_id, data=validate_webhook(data, creating=True))
    secret = new_secret()
    return crud_webhooks.create_webhook(session, owner_id=owner_id, data=clean, secret=secret), secret


def _update(session: Session, *, owner_id: int, webhook_id: int, data: dict[str, Any]) -> Webhook:
    """Validate and update in one transaction (the webhook is looked up first: NOT_FOUND wins)."""
    crud_webhooks.get_webhook(session, owner_id=owner_id, webhook_id=webhook_id)
    clean = _check_server(session, owner_id=owner_id, data=validate_webhook(data, creating=False))
    return crud_webhooks.update_webhook(session, owner_id=owner_id, webhook_id=webhook_id, data=clean)


def _rotate(session: Session, *, owner_id: int, webhook_id: int) -> tuple[Webhook, str]:
    """Give a webhook a new secret; returns it with the secret."""
    secret = new_secret()
    webhook = crud_webhooks.set_webhook_secret(
        session, owner_id=owner_id, webhook_id=webhook_id, secret=secret
    )
    return webhook, secret


def _enqueue(delivery: WebhookDelivery) -> None:
    """Queue an attempt now that its row is committed."""
    from imap2api.workers.webhooks import enqueue_delivery

    enqueue_delivery(delivery.id or 0)


@strawberry.type
class WebhookQuery:
    """Reads of webhooks and deliveries."""

    @strawberry.field(description="The caller's webhooks, oldest first.")
    async def webhooks(self, info: Info, page: int = 1, page_size: int | None = None) -> Page[WebhookType]:
        """One page of webhooks (``page: -1`` is the last page)."""
        user = info.context.require_user()
        size = clamp_page_size(page_size, default=settings.page_size, maximum=settings.max_page_size)
        result = await info.context.db(
            crud_webhooks.list_webhooks, owner_id=user.id, page=page, page_size=size
        )
        return to_gql_page(result, to_gql_webhook)

    @strawberry.field(description="One of the caller's webhooks.")
    async def webhook(self, info: Info, id: strawberry.ID) -> WebhookType:
        """A webhook by id."""
        user = info.context.require_user()
        webhook = await info.context.db(crud_webhooks.get_webhook, owner_id=user.id, webhook_id=parse_id(id))
        return to_gql_webhook(webhook)

    @strawberry.field(description="Every delivery attempt of a webhook, newest first.")
    async def webhook_deliveries(
        self, info: Info, webhook_id: strawberry.ID, page: int = 1, page_size: int | None = None
    ) -> Page[WebhookDeliveryType]:
        """One page of attempts (status code, duration, response excerpt, error)."""
        user = info.context.require_user()
        size = clamp_page_size(page_size, default=settings.page_size, maximum=settings.max_page_size)
        result = await info.context.db(
            crud_webhooks.list_deliveries,
            owner_id=user.id,
            webhook_id=parse_id(webhook_id),
            page=page,
            page_size=size,
        )
        return to_gql_page(result, to_gql_webhook_delivery)


@strawberry.type
class WebhookMutation:
    """Writes of webhooks, and manual sends."""

    @strawberry.mutation(description="Add a webhook; the answer carries its signing secret, shown only now.")
    async def create_webhook(self, info: Info, input: WebhookInput) -> WebhookWithSecretType:
        """Create a webhook (default: every event type, every server, active)."""
        user = info.context.require_user()
        webhook, secret = await info.context.db(_create, owner_id=user.id, data=webhook_input_fields(input))
        return WebhookWithSecretType(webhook=to_gql_webhook(webhook), secret=secret)

    @strawberry.mutation(description="Change a webhook; only the given fields change.")
    async def update_webhook(self, info: Info, id: strawberry.ID, input: WebhookInput) -> WebhookType:
        """Partially update a webhook."""
        user = info.context.require_user()
        webhook = await info.context.db(
            _update, owner_id=user.id, webhook_id=parse_id(id), data=webhook_input_fields(input)
        )
        return to_gql_webhook(webhook)

    @strawberry.mutation(description="Remove a webhook and its delivery history.")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> bool:
        """Delete a webhook."""
        user = info.context.require_user()
        await info.context.db(crud_webhooks.delete_webhook, owner_id=user.id, webhook_id=parse_id(id))
        return True

    @strawberry.mutation(description="Replace a webhook's signing secret; the new one is shown only now.")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookWithSecretType:
        """Rotate the secret: every attempt from now on is signed with the new one."""
        user = info.context.require_user()
        webhook, secret = await info.context.db(_rotate, owner_id=user.id, webhook_id=parse_id(id))
        return WebhookWithSecretType(webhook=to_gql_webhook(webhook), secret=secret)

    @strawberry.mutation(description="Send a webhook.test event now; returns the pending delivery.")
    async def test_webhook(self, info: Info, id: strawberry.ID) -> WebhookDeliveryType:
        """Queue a test delivery (retried like any other)."""
        user = info.context.require_user()
        delivery = await info.context.db(
            crud_webhooks.create_test_delivery, owner_id=user.id, webhook_id=parse_id(id)
        )
        await run_in_threadpool(_enqueue, delivery)
        return to_gql_webhook_delivery(delivery)

    @strawberry.mutation(description="Send an event of a past delivery again, as a new attempt.")
    async def redeliver(self, info: Info, delivery_id: strawberry.ID) -> WebhookDeliveryType:
        """Queue a new attempt of the same event to the same webhook (same event id)."""
        user = info.context.require_user()
        delivery = await info.context.db(
            crud_webhooks.create_redelivery, owner_id=user.id, delivery_id=parse_id(delivery_id)
        )
        await run_in_threadpool(_enqueue, delivery)
        return to_gql_webhook_delivery(delivery)
