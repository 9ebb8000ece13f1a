"""Pruning what only grows: delivered events with their delivery attempts, and old sync runs.

The change feed's tombstones have a retention of their own: ``crud.changes.prune_tombstones``,
run beside this by the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlmodel import Session, col

from imap2api.crud.sync_runs import ACTIVE
from imap2api.crud.webhooks import ACTIVE_STATUSES as UNFINISHED_DELIVERIES
from imap2api.models import Event, SyncRun, WebhookDelivery


@dataclass
class Pruned:
    """How many rows a prune removed."""

    events: int
    deliveries: int
    sync_runs: int


def prune_history(session: Session, *, before: datetime) -> Pruned:
    """Delete what finished before ``before``.

    - events that were dispatched and have no delivery still under way, with all their delivery
      attempts (``email.received`` is never sent twice anyway: that is the email's own flag);
    - finished sync runs, except each server's latest, so its last result stays readable.
    """
    old_events = (
        select(col(Event.id))
        .where(col(Event.created_at) < before, col(Event.dispatched_at).is_not(None))
        .where(
            ~exists().where(
                col(WebhookDelivery.event_id) == col(Event.id),
                col(WebhookDelivery.status).in_(UNFINISHED_DELIVERIES),
            )
        )
    )
    ids = list(session.scalars(old_events))
    deliveries = events = 0
    for start in range(0, len(ids), 500):  # bounded IN lists
        chunk = ids[start : start + 500]
        deliveries += (
            session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.event_id).in_(chunk))).rowcount
            or 0
        )
        events += session.exec(delete(Event).where(col(Event.id).in_(chunk))).rowcount or 0
    latest = select(func.max(SyncRun.id)).group_by(col(SyncRun.imap_server_id))
    runs = (
        session.exec(
            delete(SyncRun).where(
                col(SyncRun.created_at) < before,
                col(SyncRun.status).not_in(ACTIVE),
                col(SyncRun.id).not_in(latest),
            )
        ).rowcount
        or 0
    )
    return Pruned(events=events, deliveries=deliveries, sync_runs=runs)
