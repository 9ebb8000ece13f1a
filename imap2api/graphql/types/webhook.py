"""The Webhook and WebhookDelivery types, the payload that carries a secret once, and the input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from imap2api.crud.webhooks import subscribed_events
from imap2api.models import Webhook, WebhookDelivery


@strawberry.type(name="Webhook")
class WebhookType:
    """An endpoint that receives signed event POSTs. Its secret is never shown again after creation.

    ``failingSince`` is set while deliveries fail; an endpoint failing for a day is deactivated
    and ``disabledReason`` says why (re-activating it clears both).
    """

    id: strawberry.ID
    url: str
    events: list[str]
    imap_server: strawberry.ID | None
    is_active: bool
    disabled_reason: str
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


@strawberry.type(name="WebhookWithSecret")
class WebhookWithSecretType:
    """A webhook and its signing secret (``whsec_…``): returned once, on creation and rotation."""

    webhook: WebhookType
    secret: str


@strawberry.type(name="WebhookDelivery")
class WebhookDeliveryType:
    """One attempt to deliver one event to one webhook.

    ``status``: pending (waiting for its time), sending, success, retrying (failed, a later
    attempt follows), failed (final). ``responseBody`` holds the first 2 KB of the answer.
    """

    id: strawberry.ID
    webhook: strawberry.ID
    event_id: str
    event_type: str
    attempt: int
    status: str
    response_status: int | None
    response_body: str
    error: str
    duration_ms: int | None
    created_at: datetime
    next_attempt_at: datetime | None


def to_gql_webhook(webhook: Webhook) -> WebhookType:
    """Convert a Webhook row to its GraphQL type (without its secret)."""
    return WebhookType(
        id=strawberry.ID(str(webhook.id)),
        url=webhook.url,
        events=subscribed_events(webhook),
        imap_server=strawberry.ID(str(webhook.imap_server_id)) if webhook.imap_server_id else None,
        is_active=webhook.is_active,
        disabled_reason=webhook.disabled_reason,
        failing_since=webhook.failing_since,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def to_gql_webhook_delivery(delivery: WebhookDelivery) -> WebhookDeliveryType:
    """Convert a WebhookDelivery row to its GraphQL type."""
    return WebhookDeliveryType(
        id=strawberry.ID(str(delivery.id)),
        webhook=strawberry.ID(str(delivery.webhook_id)),
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        attempt=delivery.attempt,
        status=delivery.status,
        response_status=delivery.response_status,
        response_body=delivery.response_body,
        error=delivery.error,
        duration_ms=delivery.duration_ms,
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at,
    )


@strawberry.input
class WebhookInput:
    """Webhook settings; on update only the fields given change.

    ``url`` must be http(s) with a host. ``events`` is a subset of email.received, thread.updated,
    sync.completed (default: all). ``imapServer`` limits the webhook to one of your servers (null:
    every server). ``isActive: true`` re-activates an endpoint that was disabled for failing.
    """

    url: str | None = strawberry.UNSET
    events: list[str] | None = strawberry.UNSET
    imap_server: strawberry.ID | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET


def webhook_input_fields(data: WebhookInput) -> dict[str, Any]:
    """The fields given in a WebhookInput, under their REST names (null included)."""
    return {name: value for name, value in vars(data).items() if value is not strawberry.UNSET}
