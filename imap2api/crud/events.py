"""The event outbox: rows written in the same transaction as the changes they announce."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from typing import Any

from sqlmodel import Session, col, select

from imap2api import pubsub
from imap2api.crud import changes as crud_changes
from imap2api.db import after_commit
from imap2api.models import Event, utcnow

# session.info key: the ids of the events this transaction recorded, by owner, to announce on commit.
PENDING_ANNOUNCEMENTS = "imap2api.events.pending"


def new_event_id() -> str:
    """A unique, stable event id (``evt_`` + 24 hex characters)."""
    return "evt_" + secrets.token_hex(12)


def record_event(
    session: Session, *, owner_id: int, server_id: int | None, type: str, data: dict[str, Any]
) -> Event:
    """Add an event to the outbox (committed with the caller's transaction).

    The payload carries ``cursor``: the change feed's position after this transaction (whose email
    changes share the sequence taken here, before or after the event), to dedupe and resume from.
    """
    cursor = crud_changes.encode_cursor(crud_changes.Position(crud_changes.next_seq(session, owner_id)))
    event = Event(
        id=new_event_id(),
        owner_id=owner_id,
        imap_server_id=server_id,
        type=type,
        payload=json.dumps({**data, "cursor": cursor}, default=str),
        created_at=utcnow(),
    )
    session.add(event)
    _announce_on_commit(session, owner_id, event.id)
    return event


def _announce_on_commit(session: Session, owner_id: int, event_id: str) -> None:
    """Queue ``event_id`` for the owner's live subscribers: one hint per transaction and owner.

    A hint sent before the commit could reach a subscriber that then reads nothing; after it,
    every id named is readable. The first event of an owner registers the hook, later ones join it.
    """
    pending: dict[int, list[str]] = session.info.setdefault(PENDING_ANNOUNCEMENTS, {})
    if owner_id not in pending:
        pending[owner_id] = []
        after_commit(session, lambda: _announce(pending, owner_id))
    pending[owner_id].append(event_id)


def _announce(pending: dict[int, list[str]], owner_id: int) -> None:
    """Publish the owner's committed event ids (and forget them: a later transaction starts anew)."""
    ids = pending.pop(owner_id, [])
    if ids:
        pubsub.publish(pubsub.events_channel(owner_id), {"ids": ids})


def get_events(session: Session, *, owner_id: int | None, ids: Collection[str]) -> list[Event]:
    """The events among ``ids`` owned by ``owner_id`` (None: any owner's), oldest first."""
    if not ids:
        return []
    statement = select(Event).where(col(Event.id).in_(list(ids)))
    if owner_id is not None:
        statement = statement.where(Event.owner_id == owner_id)
    return list(session.exec(statement.order_by(col(Event.created_at), col(Event.id))))


def list_events(
    session: Session, *, owner_id: int, type: str | None = None, server_id: int | None = None
) -> list[Event]:
    """A user's events, oldest first (optionally of one type or server)."""
    statement = select(Event).where(Event.owner_id == owner_id)
    if type:
        statement = statement.where(Event.type == type)
    if server_id is not None:
        statement = statement.where(Event.imap_server_id == server_id)
    return list(session.exec(statement.order_by(col(Event.created_at), col(Event.id))))


def event_data(event: Event) -> dict[str, Any]:
    """An event's payload as a dict."""
    data: dict[str, Any] = json.loads(event.payload)
    return data
