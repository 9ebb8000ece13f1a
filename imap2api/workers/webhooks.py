"""Webhook actors: thin shells over ``imap2api.webhooks.dispatch``.

``dispatch_events`` runs the outbox relay (sent after each sync run and on every scheduler tick);
``deliver_webhook`` makes one attempt and re-sends itself with the retry's delay. Both are
idempotent, take ids only, and leave retries to the rows: a lost message is re-enqueued by
``webhook_tick`` from the scheduler.
"""

from __future__ import annotations

import logging

import dramatiq

from imap2api.webhooks import dispatch
from imap2api.workers import broker as _broker  # noqa: F401 - binds the actors to the configured broker

log = logging.getLogger("imap2api.workers")

QUEUE = "webhooks"


@dramatiq.actor(queue_name=QUEUE, max_retries=0, time_limit=10 * 60 * 1000)
def deliver_webhook(delivery_id: int) -> None:
    """Make one delivery attempt; schedule the next one when the receiver should be tried again."""
    following = dispatch.deliver(delivery_id)
    if following is not None:
        deliver_webhook.send_with_options(
            args=(following.delivery_id,), delay=int(following.delay_seconds * 1000)
        )


def enqueue_delivery(delivery_id: int) -> None:
    """Queue a delivery attempt now."""
    deliver_webhook.send(delivery_id)


@dramatiq.actor(queue_name=QUEUE, max_retries=0, time_limit=10 * 60 * 1000)
def dispatch_events() -> None:
    """Relay undispatched outbox events to the subscribed endpoints."""
    dispatch.relay_events(enqueue=enqueue_delivery)


def webhook_tick() -> None:
    """The scheduler's share: relay new events, and re-enqueue deliveries whose message was lost."""
    dispatch_events.send()
    dispatch.requeue_overdue(enqueue=enqueue_delivery)
