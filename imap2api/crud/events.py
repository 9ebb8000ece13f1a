"""The event outbox: rows written in the same transaction as the changes they announce."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlmodel import Session, col, select

from imap2api.crud import changes as crud_changes
from imap2api.models import Event, utcnow


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
    return event


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
