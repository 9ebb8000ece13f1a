"""Webhooks, their deliveries and the outbox relay's queries; owner-scoped where a user asks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from imap2api.crud import events as crud_events
from imap2api.crud.common import Page, paginate
from imap2api.enums import ACTIVE_DELIVERY_STATUSES, TEST_EVENT, DeliveryStatus, EventType
from imap2api.errors import NotFound, ValidationFailed
from imap2api.models import Event, Webhook, WebhookDelivery, utcnow
from imap2api.security import encrypt_secret

ACTIVE_STATUSES = ACTIVE_DELIVERY_STATUSES


def subscribed_events(webhook: Webhook) -> list[str]:
    """The event types a webhook asked for, in canonical order."""
    chosen = {name.strip() for name in webhook.events.split(",") if name.strip()}
    return [name.value for name in EventType if name in chosen]


# --- webhooks, as their owner manages them ---------------------------------------------------


def create_webhook(session: Session, *, owner_id: int, data: dict[str, Any], secret: str) -> Webhook:
    """Store a validated webhook with its signing secret encrypted."""
    now = utcnow()
    webhook = Webhook(
        owner_id=owner_id,
        url=data["url"],
        events=",".join(data["events"]),
        imap_server_id=data.get("imap_server"),
        is_active=data.get("is_active", True),
        secret_encrypted=encrypt_secret(secret),
        created_at=now,
        updated_at=now,
    )
    session.add(webhook)
    session.flush()
    return webhook


def get_webhook(session: Session, *, owner_id: int | None, webhook_id: int) -> Webhook:
    """The webhook with this id owned by ``owner_id`` (None: any owner, for workers)."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or (owner_id is not None and webhook.owner_id != owner_id):
        raise NotFound()
    return webhook


def list_webhooks(session: Session, *, owner_id: int, page: int, page_size: int) -> Page[Webhook]:
    """One page of a user's webhooks, oldest first."""
    statement = select(Webhook).where(Webhook.owner_id == owner_id).order_by(col(Webhook.id))
    return paginate(session, statement, page=page, page_size=page_size)


def update_webhook(
    session: Session, *, owner_id: int | None, webhook_id: int, data: dict[str, Any]
) -> Webhook:
    """Apply validated changes; only the given fields change (``owner_id`` None: any owner, for admins).

    Re-activating a webhook clears its failure flag; a new URL starts its failure clock afresh.
    """
    webhook = get_webhook(session, owner_id=owner_id, webhook_id=webhook_id)
    if "url" in data and data["url"] != webhook.url:
        webhook.url = data["url"]
        webhook.failing_since = None
    if "events" in data:
        webhook.events = ",".join(data["events"])
    if "imap_server" in data:
        webhook.imap_server_id = data["imap_server"]
    if "is_active" in data:
        if data["is_active"] and not webhook.is_active:
            webhook.disabled_reason = ""
            webhook.failing_since = None
        webhook.is_active = data["is_active"]
    webhook.updated_at = utcnow()
    session.add(webhook)
    session.flush()
    return webhook


def set_active(session: Session, *, owner_id: int | None, webhook_ids: Sequence[int], active: bool) -> int:
    """Enable or disable these webhooks in one statement (others' and unknown ids are skipped);
    re-activating clears the failure flag, as ``update_webhook`` does. Returns how many changed."""
    statement = update(Webhook).where(
        col(Webhook.id).in_(list(webhook_ids)), col(Webhook.is_active) != active
    )
    if owner_id is not None:
        statement = statement.where(col(Webhook.owner_id) == owner_id)
    values: dict[str, Any] = {"is_active": active, "updated_at": utcnow()}
    if active:
        values.update(disabled_reason="", failing_since=None)
    return session.exec(statement.values(**values)).rowcount or 0


def delete_webhook(session: Session, *, owner_id: int | None, webhook_id: int) -> None:
    """Delete a webhook and its deliveries (ON DELETE CASCADE); ``owner_id`` None: any owner."""
    session.delete(get_webhook(session, owner_id=owner_id, webhook_id=webhook_id))
    session.flush()


def set_webhook_secret(session: Session, *, owner_id: int, webhook_id: int, secret: str) -> Webhook:
    """Replace a webhook's signing secret (stored encrypted); attempts from now on use it."""
    webhook = get_webhook(session, owner_id=owner_id, webhook_id=webhook_id)
    webhook.secret_encrypted = encrypt_secret(secret)
    webhook.updated_at = utcnow()
    session.add(webhook)
    session.flush()
    return webhook


# --- deliveries, as their owner sees them ----------------------------------------------------


def list_deliveries(
    session: Session, *, owner_id: int, webhook_id: int, page: int, page_size: int
) -> Page[WebhookDelivery]:
    """One page of a webhook's delivery attempts, newest first."""
    get_webhook(session, owner_id=owner_id, webhook_id=webhook_id)
    statement = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(col(WebhookDelivery.id).desc())
    )
    return paginate(session, statement, page=page, page_size=page_size)


def get_delivery(session: Session, *, owner_id: int | None, delivery_id: int) -> WebhookDelivery:
    """A delivery attempt, checked against its webhook's owner when ``owner_id`` is given."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound()
    if owner_id is not None:
        get_webhook(session, owner_id=owner_id, webhook_id=delivery.webhook_id)
    return delivery


def _require_active(webhook: Webhook) -> None:
    """Manual sends go only to active endpoints (re-activate a disabled one first)."""
    if not webhook.is_active:
        raise ValidationFailed({"is_active": ["This webhook is disabled; activate it first."]})


def create_test_delivery(session: Session, *, owner_id: int, webhook_id: int) -> WebhookDelivery:
    """A ``webhook.test`` event for one webhook, with its pending delivery (the relay never sees it)."""
    webhook = get_webhook(session, owner_id=owner_id, webhook_id=webhook_id)
    _require_active(webhook)
    event = crud_events.record_event(
        session,
        owner_id=owner_id,
        server_id=None,
        type=TEST_EVENT,
        data={"webhook": webhook.id, "message": "This is a test event from imap2api."},
    )
    event.dispatched_at = event.created_at
    session.flush()
    delivery = WebhookDelivery(
        webhook_id=webhook.id or 0,
        event_id=event.id,
        event_type=event.type,
        attempt=1,
        status=DeliveryStatus.PENDING,
        created_at=event.created_at,
        next_attempt_at=event.created_at,
    )
    session.add(delivery)
    session.flush()
    return delivery


def create_redelivery(session: Session, *, owner_id: int | None, delivery_id: int) -> WebhookDelivery:
    """A new pending attempt of the same event to the same webhook (a fresh retry chain)."""
    previous = get_delivery(session, owner_id=owner_id, delivery_id=delivery_id)
    _require_active(get_webhook(session, owner_id=owner_id, webhook_id=previous.webhook_id))
    rows = _attempts_of(session, event_id=previous.event_id, webhook_id=previous.webhook_id)
    if any(row.status in ACTIVE_STATUSES for row in rows):
        message = "This event is already being delivered to this webhook."
        raise ValidationFailed({"non_field_errors": [message]})
    now = utcnow()
    delivery = WebhookDelivery(
        webhook_id=previous.webhook_id,
        event_id=previous.event_id,
        event_type=previous.event_type,
        attempt=max(r.attempt for r in rows) + 1,
        status=DeliveryStatus.PENDING,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


# --- the outbox relay ------------------------------------------------------------------------


def claim_events(session: Session, *, limit: int = 500) -> list[Event]:
    """Mark up to ``limit`` undispatched events as dispatched and return them, oldest first.

    The conditional UPDATE decides who wins, so concurrent relays never claim the same event
    (PostgreSQL: SKIP LOCKED keeps them from waiting on each other; SQLite: writers serialise).
    The claim commits with the deliveries the caller creates from it.
    """
    candidates = list(
        session.exec(
            select(Event.id)
            .where(col(Event.dispatched_at).is_(None))
            .order_by(col(Event.created_at), col(Event.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not candidates:
        return []
    claimed = set(
        session.exec(
            update(Event)
            .where(col(Event.id).in_(candidates), col(Event.dispatched_at).is_(None))
            .values(dispatched_at=utcnow())
            .returning(col(Event.id))
        ).scalars()
    )
    if not claimed:
        return []
    rows = session.exec(select(Event).where(col(Event.id).in_(claimed)))
    return sorted(rows, key=lambda event: (event.created_at, event.id))


def create_deliveries(session: Session, *, events: list[Event]) -> list[int]:
    """One pending delivery per event and matching webhook; returns their ids.

    A webhook matches an event when it is active, belongs to the event's owner, subscribes to its
    type, has no server filter or the event's server, and existed when the event happened.
    """
    if not events:
        return []
    owners = {event.owner_id for event in events}
    hooks_by_owner: dict[int, list[Webhook]] = {}
    for hook in session.exec(
        select(Webhook).where(col(Webhook.owner_id).in_(owners), Webhook.is_active == True)  # noqa: E712
    ):
        hooks_by_owner.setdefault(hook.owner_id, []).append(hook)
    now = utcnow()
    deliveries = []
    for event in events:
        for hook in hooks_by_owner.get(event.owner_id, []):
            if event.type not in subscribed_events(hook):
                continue
            if hook.imap_server_id is not None and hook.imap_server_id != event.imap_server_id:
                continue
            if hook.created_at > event.created_at:
                continue
            deliveries.append(
                WebhookDelivery(
                    webhook_id=hook.id or 0,
                    event_id=event.id,
                    event_type=event.type,
                    attempt=1,
                    status=DeliveryStatus.PENDING,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
    session.add_all(deliveries)
    session.flush()
    return [delivery.id or 0 for delivery in deliveries]


def claim_overdue_deliveries(session: Session, *, grace_seconds: float, limit: int = 500) -> list[int]:
    """Deliveries whose message was lost, claimed for re-enqueueing; returns their ids.

    Lost means: pending and due for ``grace_seconds`` already (the relay or a worker died between
    commit and enqueue, or the broker dropped a delayed message), or being sent by a worker whose
    lease on it ran out (it died mid-send). Each claim moves ``next_attempt_at`` to now with an
    optimistic UPDATE, so two schedulers never both re-enqueue a row, and a row still waiting in
    a busy queue is re-enqueued at most once per grace period.
    """
    now = utcnow()
    rows = session.exec(
        select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.next_attempt_at)
        .where(
            or_(
                and_(
                    col(WebhookDelivery.status) == DeliveryStatus.PENDING,
                    col(WebhookDelivery.next_attempt_at) <= now - timedelta(seconds=grace_seconds),
                ),
                and_(
                    col(WebhookDelivery.status) == DeliveryStatus.SENDING,
                    col(WebhookDelivery.next_attempt_at) <= now,
                ),
            )
        )
        .order_by(col(WebhookDelivery.next_attempt_at))
        .limit(limit)
    ).all()
    claimed = []
    for delivery_id, status, due in rows:
        result = session.exec(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.status) == status,
                col(WebhookDelivery.next_attempt_at) == due,
            )
            .values(status=DeliveryStatus.PENDING, next_attempt_at=now)
        )
        if result.rowcount == 1:
            claimed.append(delivery_id or 0)
    return claimed


# --- one attempt, as the delivery worker makes it --------------------------------------------


@dataclass
class ClaimedDelivery:
    """A delivery a worker now holds, with what it needs to send it."""

    delivery: WebhookDelivery
    webhook: Webhook
    event: Event
    chain_started: datetime
    failures_before: int


def _attempts_of(session: Session, *, event_id: str, webhook_id: int) -> list[WebhookDelivery]:
    """Every attempt of one event to one webhook, in attempt order."""
    return list(
        session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id == event_id, WebhookDelivery.webhook_id == webhook_id)
            .order_by(col(WebhookDelivery.attempt), col(WebhookDelivery.id))
        )
    )


def claim_delivery(session: Session, *, delivery_id: int, lease_seconds: float) -> ClaimedDelivery | None:
    """Take a due pending delivery for sending (status ``sending`` until the lease runs out).

    None when it is gone, already taken or done, or not yet due: a duplicate message is a no-op.
    """
    now = utcnow()
    result = session.exec(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
            or_(
                col(WebhookDelivery.next_attempt_at).is_(None),
                col(WebhookDelivery.next_attempt_at) <= now + timedelta(seconds=1),
            ),
        )
        .values(status=DeliveryStatus.SENDING, next_attempt_at=now + timedelta(seconds=lease_seconds))
    )
    if result.rowcount != 1:
        return None
    delivery = session.get(WebhookDelivery, delivery_id)
    webhook = session.get(Webhook, delivery.webhook_id) if delivery else None
    event = session.get(Event, delivery.event_id) if delivery else None
    if delivery is None or webhook is None or event is None:
        return None
    # The chain is this attempt and the "retrying" ones right before it (a redelivery starts anew).
    chain = [delivery]
    earlier = [
        row
        for row in _attempts_of(session, event_id=event.id, webhook_id=webhook.id or 0)
        if row.attempt < delivery.attempt
    ]
    for row in reversed(earlier):
        if row.status != DeliveryStatus.RETRYING:
            break
        chain.append(row)
    return ClaimedDelivery(
        delivery,
        webhook,
        event,
        chain_started=min(row.created_at for row in chain),
        failures_before=len(chain) - 1,
    )


def record_attempt(
    session: Session,
    *,
    delivery_id: int,
    status: str,
    response_status: int | None = None,
    response_body: str = "",
    error: str = "",
    duration_ms: int | None = None,
) -> bool:
    """Store an attempt's outcome on the row the worker holds; False if it no longer holds it."""
    result = session.exec(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.status) == DeliveryStatus.SENDING)
        .values(
            status=status,
            response_status=response_status,
            response_body=response_body,
            error=error,
            duration_ms=duration_ms,
            next_attempt_at=None,
        )
    )
    return result.rowcount == 1


def schedule_retry(session: Session, *, previous: WebhookDelivery, at: datetime) -> WebhookDelivery:
    """The next attempt of a chain, pending until ``at``."""
    delivery = WebhookDelivery(
        webhook_id=previous.webhook_id,
        event_id=previous.event_id,
        event_type=previous.event_type,
        attempt=previous.attempt + 1,
        status=DeliveryStatus.PENDING,
        created_at=utcnow(),
        next_attempt_at=at,
    )
    session.add(delivery)
    session.flush()
    return delivery


def mark_webhook_succeeding(session: Session, *, webhook_id: int) -> None:
    """A delivery got through: the endpoint is no longer failing."""
    session.exec(
        update(Webhook)
        .where(col(Webhook.id) == webhook_id, col(Webhook.failing_since).is_not(None))
        .values(failing_since=None)
    )


def mark_webhook_failing(
    session: Session, *, webhook_id: int, now: datetime, disable_after_seconds: float, error: str
) -> bool:
    """Note a failed attempt; disable the endpoint once it has failed for ``disable_after_seconds``.

    Returns True when this call disabled it (``disabled_reason`` says why; ``failing_since``
    stays as the flag of when the failures began).
    """
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        return False
    if webhook.failing_since is None:
        webhook.failing_since = now
    disabled = False
    if webhook.is_active and (now - webhook.failing_since).total_seconds() >= disable_after_seconds:
        webhook.is_active = False
        since = webhook.failing_since.isoformat().replace("+00:00", "Z")
        webhook.disabled_reason = (
            f"Disabled automatically: every delivery has failed since {since}. Last error: {error}"
        )[:2000]
        webhook.updated_at = now
        disabled = True
    session.add(webhook)
    return disabled
