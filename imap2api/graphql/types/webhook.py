"""The Webhook and WebhookDelivery types, the payload that carries a secret once, and the input.

Derived from ``models.WebhookPublic``, ``WebhookDeliveryPublic`` and ``WebhookSettings``.
"""

from __future__ import annotations

from typing import Any

import strawberry

from imap2api.crud.webhooks import subscribed_events
from imap2api.graphql import derive
from imap2api.models import Webhook, WebhookDelivery, WebhookDeliveryPublic, WebhookPublic, WebhookSettings


@derive.output_type(
    WebhookPublic,
    name="Webhook",
    ids=("imap_server",),
    sources={"events": subscribed_events, "imap_server": "imap_server_id"},
)
class WebhookType:
    """An endpoint that receives signed event POSTs. Its secret is never shown again after creation.

    ``failingSince`` is set while deliveries fail; an endpoint failing for a day is deactivated
    and ``disabledReason`` says why (re-activating it clears both).
    """


@strawberry.type(name="WebhookWithSecret")
class WebhookWithSecretType:
    """A webhook and its signing secret (``whsec_…``): returned once, on creation and rotation."""

    webhook: WebhookType
    secret: str


@derive.output_type(
    WebhookDeliveryPublic,
    name="WebhookDelivery",
    first=("id", "webhook"),
    ids=("webhook",),
    sources={"webhook": "webhook_id"},
)
class WebhookDeliveryType:
    """One attempt to deliver one event to one webhook (``responseBody``: the first 2 KB of the answer)."""


def to_gql_webhook(webhook: Webhook) -> WebhookType:
    """Convert a Webhook row to its GraphQL type (without its secret)."""
    return derive.to_gql(WebhookType, webhook)


def to_gql_webhook_delivery(delivery: WebhookDelivery) -> WebhookDeliveryType:
    """Convert a WebhookDelivery row to its GraphQL type."""
    return derive.to_gql(WebhookDeliveryType, delivery)


@derive.input_type(WebhookSettings, name="WebhookInput", ids=("imap_server",))
class WebhookInput:
    """Webhook settings; on update only the fields given change.

    ``url`` must be http(s) with a host. ``events`` defaults to every type. ``imapServer`` limits the
    webhook to one of your servers (null: every server). ``isActive: true`` re-activates an endpoint
    that was disabled for failing.
    """


def webhook_input_fields(data: WebhookInput) -> dict[str, Any]:
    """The fields given in a WebhookInput (null included), enums as their values."""
    return derive.given_fields(data)
