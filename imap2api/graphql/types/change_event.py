"""The ChangeEvent type: one outbox event as the ``emailChanges`` subscription delivers it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from imap2api.crud.events import event_data
from imap2api.enums import EventType
from imap2api.errors import NotFound
from imap2api.graphql.context import Context
from imap2api.graphql.derive import gql_enum
from imap2api.graphql.types.email import EmailType, to_gql_email
from imap2api.models import Event
from imap2api.services import mail

gql_enum(EventType)

# The events naming an email that is still mirrored afterwards (email.deleted names one gone).
WITH_EMAIL = frozenset({EventType.EMAIL_RECEIVED, EventType.EMAIL_UPDATED, EventType.EMAIL_MOVED})


@strawberry.type(name="ChangeEvent")
class ChangeEventType:
    """An outbox event (docs/webhooks.md, "Event types"): its common fields read off the payload."""

    id: strawberry.ID = strawberry.field(description="The event id (evt_…), as webhooks send it.")
    type: EventType
    cursor: str = strawberry.field(description="The change feed position right after this event.")
    created_at: datetime
    imap_server: strawberry.ID | None = strawberry.field(description="The server (null: none).")
    email_id: strawberry.ID | None = strawberry.field(
        description="The email of an email.* event (a move keeps it; after email.deleted it is gone)."
    )
    folder: str | None = strawberry.field(
        description="The folder of email.received/updated/deleted and folder.* events."
    )
    from_folder: str | None = strawberry.field(description="Where email.moved took the email from.")
    to_folder: str | None = strawberry.field(description="Where email.moved put the email.")
    flags: list[str] | None = strawberry.field(description="The flags after email.updated or email.moved.")
    seen: bool | None
    flagged: bool | None
    answered: bool | None
    payload: JSON = strawberry.field(description="The whole payload, as a webhook's data.")

    @strawberry.field(
        description="The email as it is now, for email.received, email.updated and email.moved "
        "(null for other types, or when it is gone again)."
    )
    async def email(self, info: strawberry.Info[Context, None]) -> EmailType | None:
        """Read only when selected, so a subscriber wanting the event alone costs no email read."""
        if self.type not in WITH_EMAIL or self.email_id is None:
            return None
        try:
            return to_gql_email(await info.context.run(mail.get, int(self.email_id)))
        except NotFound:
            return None


def _id(value: Any) -> strawberry.ID | None:
    """An integer id of the payload as a GraphQL ID (None when absent)."""
    return None if value is None else strawberry.ID(str(value))


def to_gql_change_event(event: Event) -> ChangeEventType:
    """Convert an outbox row (of an ``EventType``) to its GraphQL type."""
    data = event_data(event)
    kind = EventType(event.type)
    flags = data.get("flags")
    return ChangeEventType(
        id=strawberry.ID(event.id),
        type=kind,
        cursor=data.get("cursor", ""),
        created_at=event.created_at,
        imap_server=_id(event.imap_server_id),
        email_id=_id(data.get("id")) if kind.startswith("email.") else None,
        folder=data.get("folder"),
        from_folder=data.get("from_folder"),
        to_folder=data.get("to_folder"),
        flags=flags.split() if isinstance(flags, str) else None,
        seen=data.get("seen"),
        flagged=data.get("flagged"),
        answered=data.get("answered"),
        payload=JSON(data),
    )
