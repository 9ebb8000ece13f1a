"""The outbox, read: the events a live subscriber was told about, as far as the caller may see them."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session

from imap2api.crud import events as crud_events
from imap2api.enums import EventType
from imap2api.models import Event
from imap2api.services.principal import Principal

KNOWN_TYPES = frozenset(EventType)


def get_many(
    session: Session,
    actor: Principal,
    ids: Collection[str],
    *,
    server_id: int | None = None,
    types: Collection[EventType] | None = None,
) -> list[Event]:
    """The principal's events among ``ids``, oldest first; optionally of one server and some types.

    Only ``EventType``s: a ``webhook.test`` event is its webhook's alone.
    """
    wanted = frozenset(types) if types else KNOWN_TYPES
    return [
        event
        for event in crud_events.get_events(session, owner_id=actor.owner_scope, ids=ids)
        if event.type in wanted and (server_id is None or event.imap_server_id == server_id)
    ]
