"""Webhooks: manage endpoints, rotate secrets, send test events and redeliveries, read deliveries."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from imap2api.crud import webhooks as crud_webhooks
from imap2api.crud.common import Page
from imap2api.models import Webhook, WebhookDelivery
from imap2api.services import jobs, servers
from imap2api.services.accounts import owner_for_new
from imap2api.services.paging import page_number, page_size
from imap2api.services.principal import Principal
from imap2api.webhooks.signing import new_secret
from imap2api.webhooks.validation import validate_webhook

# The fields given, by their snake_case names (absent: unchanged; None: explicitly null).
WebhookChanges = dict[str, Any]


def get(session: Session, actor: Principal, webhook_id: int) -> Webhook:
    """The webhook, if it is within the principal's reach."""
    return crud_webhooks.get_webhook(session, owner_id=actor.owner_scope, webhook_id=webhook_id)


def page(
    session: Session, actor: Principal, *, number: int, size: int | None, last: bool = False
) -> Page[Webhook]:
    """One page of the user's webhooks, oldest first."""
    assert actor.user_id is not None
    return crud_webhooks.list_webhooks(
        session, owner_id=actor.user_id, page=page_number(number, last=last), page_size=page_size(size)
    )


def deliveries(
    session: Session, actor: Principal, webhook_id: int, *, number: int, size: int | None, last: bool = False
) -> Page[WebhookDelivery]:
    """One page of a webhook's delivery attempts, newest first."""
    webhook = get(session, actor, webhook_id)
    return crud_webhooks.list_deliveries(
        session,
        owner_id=webhook.owner_id,
        webhook_id=webhook_id,
        page=page_number(number, last=last),
        page_size=page_size(size),
    )


def _clean(
    session: Session, actor: Principal, changes: WebhookChanges, *, owner_id: int, creating: bool
) -> WebhookChanges:
    """Validate, and check that a named server belongs to the webhook's owner."""
    clean = validate_webhook(changes, creating=creating)
    if "imap_server" in clean:
        clean["imap_server"] = servers.referenced(session, actor, clean["imap_server"], owner_id=owner_id)
    return clean


def create(
    session: Session, actor: Principal, changes: WebhookChanges, *, owner_id: int | None = None
) -> tuple[Webhook, str]:
    """Validate and store a webhook (``owner_id``: the owner an admin chose); returns it and its secret."""
    owner = owner_for_new(session, actor, owner_id)
    clean = _clean(session, actor, changes, owner_id=owner, creating=True)
    secret = new_secret()
    return crud_webhooks.create_webhook(session, owner_id=owner, data=clean, secret=secret), secret


def update(session: Session, actor: Principal, webhook_id: int, changes: WebhookChanges) -> Webhook:
    """Validate and change only the given fields (the webhook is looked up first: NOT_FOUND wins)."""
    webhook = get(session, actor, webhook_id)
    clean = _clean(session, actor, changes, owner_id=webhook.owner_id, creating=False)
    return crud_webhooks.update_webhook(session, owner_id=webhook.owner_id, webhook_id=webhook_id, data=clean)


def set_active(session: Session, actor: Principal, webhook_ids: list[int], *, active: bool) -> int:
    """Enable or disable these webhooks (unknown ids are skipped); returns how many changed."""
    return crud_webhooks.set_active(
        session, owner_id=actor.owner_scope, webhook_ids=webhook_ids, active=active
    )


def delete(session: Session, actor: Principal, webhook_id: int) -> None:
    """Delete a webhook and its delivery history."""
    webhook = get(session, actor, webhook_id)
    crud_webhooks.delete_webhook(session, owner_id=webhook.owner_id, webhook_id=webhook_id)


def rotate_secret(session: Session, actor: Principal, webhook_id: int) -> tuple[Webhook, str]:
    """Give a webhook a new signing secret; returns it with the secret (shown only now)."""
    webhook = get(session, actor, webhook_id)
    secret = new_secret()
    webhook = crud_webhooks.set_webhook_secret(
        session, owner_id=webhook.owner_id, webhook_id=webhook_id, secret=secret
    )
    return webhook, secret


def send_test(session: Session, actor: Principal, webhook_id: int) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to an active webhook; returns its pending delivery."""
    webhook = get(session, actor, webhook_id)
    delivery = crud_webhooks.create_test_delivery(session, owner_id=webhook.owner_id, webhook_id=webhook_id)
    jobs.enqueue(session, jobs.delivery_job(delivery.id or 0))
    return delivery


def redeliver(session: Session, actor: Principal, delivery_id: int) -> WebhookDelivery:
    """Queue a new attempt of a past delivery's event (same event id) to the same webhook."""
    delivery = crud_webhooks.create_redelivery(session, owner_id=actor.owner_scope, delivery_id=delivery_id)
    jobs.enqueue(session, jobs.delivery_job(delivery.id or 0))
    return delivery
