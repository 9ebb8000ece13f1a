"""Webhook actors: thin shells over ``imap2api.webhooks.dispatch``.

``dispatch_events`` runs the outbox relay (sent after each sync run and on every scheduler tick);
``deliver_webhook`` makes one attempt and re-sends itself with the retry's delay. Both are
idempotent, take ids only, and leave retries to the rows: a lost message is re-enqueued by
``webhook_tick`` from the scheduler.
"""

from __future__ import annotations

import logging

from imap2api.services import jobs
from imap2api.webhooks import dispatch

log = logging.getLogger("imap2api.workers")


def deliver_webhook(delivery_id: int) -> None:
    """Make one delivery attempt; schedule the next one when the receiver should be tried again."""
    following = dispatch.deliver(delivery_id)
    if following is not None:
        jobs.send(jobs.delivery_job(following.delivery_id, delay_ms=int(following.delay_seconds * 1000)))


def enqueue_delivery(delivery_id: int) -> None:
    """Queue a delivery attempt now."""
    jobs.send(jobs.delivery_job(delivery_id))


def dispatch_events() -> None:
    """Relay undispatched outbox events to the subscribed endpoints."""
    dispatch.relay_events(enqueue=enqueue_delivery)


def webhook_tick() -> None:
    """The scheduler's share: relay new events, and re-enqueue deliveries whose message was lost."""
    jobs.send(jobs.dispatch_job())
    dispatch.requeue_overdue(enqueue=enqueue_delivery)
