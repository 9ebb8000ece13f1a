"""IMAP servers: list, read, create, change, delete; and the one ownership check every domain uses."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from imap2api.crud import servers as crud_servers
from imap2api.crud.common import Page
from imap2api.errors import NotFound, ValidationFailed
from imap2api.ids import parse_id
from imap2api.models import ImapServer
from imap2api.services.accounts import owner_for_new
from imap2api.services.paging import page_number, page_size
from imap2api.services.principal import Principal
from imap2api.validation import validate_server

# The fields given, by their snake_case names (absent: unchanged; None: explicitly null).
ServerChanges = dict[str, Any]
INVALID_REFERENCE = 'Invalid pk "{value}" - object does not exist.'
# What an admin, who sees every server, is told when the server is another user's.
NOT_THE_OWNERS = "That server does not belong to this owner."


def get(session: Session, actor: Principal, server_id: int) -> ImapServer:
    """The server, if it is within the principal's reach (else NotFound, as if it did not exist)."""
    return crud_servers.get_server(session, owner_id=actor.owner_scope, server_id=server_id)


def referenced(
    session: Session,
    actor: Principal,
    value: Any,
    *,
    field: str = "imap_server",
    message: str = INVALID_REFERENCE,
    owner_id: int | None = None,
) -> int | None:
    """A server named in another object's ``field``: its id, or a field error when it is not the
    principal's (or, with ``owner_id``, not that owner's). None and "" name no server."""
    if value is None or value == "":
        return None
    try:
        server_id = parse_id(value)
        server = get(session, actor, server_id)
    except NotFound:
        raise ValidationFailed({field: [message.format(value=value)]}) from None
    if owner_id is not None and server.owner_id != owner_id:
        # Only a principal who may see every server gets here (a user's own get() fails above).
        raise ValidationFailed({field: [NOT_THE_OWNERS]})
    return server_id


def page(
    session: Session, actor: Principal, *, number: int, size: int | None, last: bool = False
) -> Page[ImapServer]:
    """One page of the user's servers, oldest first."""
    assert actor.user_id is not None
    return crud_servers.list_servers(
        session, owner_id=actor.user_id, page=page_number(number, last=last), page_size=page_size(size)
    )


def create(
    session: Session, actor: Principal, changes: ServerChanges, *, owner_id: int | None = None
) -> ImapServer:
    """Validate and store a new server (``owner_id``: the owner an admin chose)."""
    owner = owner_for_new(session, actor, owner_id)
    return crud_servers.create_server(session, owner_id=owner, data=validate_server(changes))


def update(session: Session, actor: Principal, server_id: int, changes: ServerChanges) -> ImapServer:
    """Validate against the stored values and change only the given fields."""
    server = get(session, actor, server_id)
    clean = validate_server(changes, current=crud_servers.server_fields(server))
    return crud_servers.update_server(session, owner_id=server.owner_id, server_id=server_id, data=clean)


def delete(session: Session, actor: Principal, server_id: int) -> None:
    """Delete a server; its folders, mail, runs and webhooks go with it."""
    server = get(session, actor, server_id)
    crud_servers.delete_server(session, owner_id=server.owner_id, server_id=server_id)
