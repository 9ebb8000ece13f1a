"""The outbox relay and the delivery step, as plain functions the actors (and tests) call.

Flow: the sync engine commits events with its rows. ``relay_events`` claims undispatched events
and writes one pending ``WebhookDelivery`` per subscribed endpoint in one transaction, and only
after that commit enqueues a delivery message per row. ``deliver`` makes one attempt: it claims
the row (status ``sending``), signs and POSTs the event, stores the outcome, and in the same
transaction writes the next attempt's row when a retry is due; the caller enqueues that with a
delay. A process dying at any point leaves a pending or sending row behind, which
``requeue_overdue`` (run by the scheduler) enqueues again: delivery is at least once, with the
event id as the stable ``webhook-id`` receivers de-duplicate on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from imap2api.config import settings
from imap2api.crud import webhooks as crud_webhooks
from imap2api.db import session_scope
from imap2api.enums import TEST_EVENT, DeliveryStatus
from imap2api.models import Event, utcnow
from imap2api.security import DecryptionError, decrypt_secret
from imap2api.webhooks import retry, sender, signing

log = logging.getLogger("imap2api.webhooks")

Enqueue = Callable[[int], None]
RELAY_BATCH = 500
REQUEUE_GRACE_SECONDS = 60.0


def lease_seconds() -> float:
    """How long a worker holds a delivery it is sending before another may take it over."""
    return 4 * settings.webhook_timeout_seconds + 30


def event_message(event: Event) -> bytes:
    """The JSON body POSTed for an event: ``{"id", "type", "created_at", "data"}``."""
    created = event.created_at.isoformat().replace("+00:00", "Z")
    message = {"id": event.id, "type": event.type, "created_at": created, "data": json.loads(event.payload)}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def create_pending_deliveries(*, limit: int = RELAY_BATCH) -> tuple[int, list[int]]:
    """The relay's transaction: claim events, write their deliveries, commit; (events, delivery ids)."""
    with session_scope() as session:
        events = crud_webhooks.claim_events(session, limit=limit)
        ids = crud_webhooks.create_deliveries(session, events=events)
    return len(events), ids


def relay_events(*, enqueue: Enqueue, limit: int = RELAY_BATCH) -> list[int]:
    """Turn every undispatched event into deliveries and enqueue them after commit; returns their ids.

    Safe to run concurrently and repeatedly: each event is claimed by exactly one relay.
    """
    enqueued: list[int] = []
    while True:
        claimed, ids = create_pending_deliveries(limit=limit)
        for delivery_id in ids:
            enqueue(delivery_id)
        enqueued.extend(ids)
        if claimed < limit:
            return enqueued


def requeue_overdue(*, enqueue: Enqueue, grace_seconds: float = REQUEUE_GRACE_SECONDS) -> list[int]:
    """Enqueue again the deliveries whose message was lost (see ``claim_overdue_deliveries``)."""
    with session_scope() as session:
        ids = crud_webhooks.claim_overdue_deliveries(session, grace_seconds=grace_seconds)
    for delivery_id in ids:
        enqueue(delivery_id)
    if ids:
        log.info("re-enqueued %d overdue webhook deliveries", len(ids))
    return ids


@dataclass(frozen=True)
class Retry:
    """The next attempt of a chain: its delivery row and the delay before it is due."""

    delivery_id: int
    delay_seconds: float


def _refusal(claimed: crud_webhooks.ClaimedDelivery) -> tuple[str | None, str]:
    """(why the claimed attempt must not be sent, or None; the decrypted secret)."""
    webhook, event = claimed.webhook, claimed.event
    if not webhook.is_active:
        return "webhook disabled: not sent", ""
    if event.type not in crud_webhooks.subscribed_events(webhook) and event.type != TEST_EVENT:
        return "webhook no longer subscribed to this event: not sent", ""
    try:
        return None, decrypt_secret(webhook.secret_encrypted)
    except DecryptionError as exc:
        return str(exc), ""


def deliver(delivery_id: int) -> Retry | None:
    """Make one attempt of a delivery and store it; returns the retry to enqueue, if one is due."""
    with session_scope() as session:
        claimed = crud_webhooks.claim_delivery(
            session, delivery_id=delivery_id, lease_seconds=lease_seconds()
        )
        if claimed is None:
            return None  # gone, done, taken by another worker, or not yet due
        refusal, secret = _refusal(claimed)
        if refusal:
            crud_webhooks.record_attempt(
                session, delivery_id=delivery_id, status=DeliveryStatus.FAILED, error=refusal
            )
            return None
    body = event_message(claimed.event)
    result = sender.send(claimed.webhook.url, body, signing.headers(secret, claimed.event.id, body))
    return _record(claimed, result)


def _record(claimed: crud_webhooks.ClaimedDelivery, result: sender.SendResult) -> Retry | None:
    """Store an attempt's outcome and the endpoint's health; write the next attempt when one is due."""
    now = utcnow()
    webhook_id = claimed.webhook.id or 0
    delay = None
    if not result.ok:
        delay = retry.retry_delay(
            result,
            failures=claimed.failures_before + 1,
            chain_started=claimed.chain_started,
            now=now,
            base=settings.webhook_retry_base_seconds,
            span=settings.webhook_retry_span_seconds,
        )
    with session_scope() as session:
        if result.ok:
            crud_webhooks.mark_webhook_succeeding(session, webhook_id=webhook_id)
        elif crud_webhooks.mark_webhook_failing(
            session,
            webhook_id=webhook_id,
            now=now,
            disable_after_seconds=settings.webhook_disable_after_seconds,
            error=result.error or f"HTTP {result.status_code}",
        ):
            log.warning("webhook %s disabled: its deliveries have failed for too long", webhook_id)
            delay = None
        status = (
            DeliveryStatus.SUCCESS
            if result.ok
            else (DeliveryStatus.RETRYING if delay is not None else DeliveryStatus.FAILED)
        )
        if not crud_webhooks.record_attempt(
            session,
            delivery_id=claimed.delivery.id or 0,
            status=status,
            response_status=result.status_code,
            response_body=result.body,
            error=result.error,
            duration_ms=result.duration_ms,
        ):
            session.rollback()
            return None  # the lease ran out and another worker took over this attempt
        if delay is None:
            return None
        following = crud_webhooks.schedule_retry(
            session, previous=claimed.delivery, at=now + timedelta(seconds=delay)
        )
    return Retry(following.id or 0, delay)
