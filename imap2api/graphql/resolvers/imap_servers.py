"""Queries and mutations on IMAP servers."""

from __future__ import annotations

import strawberry
from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud.common import clamp_page_size
from imap2api.graphql.context import Context
from imap2api.graphql.ids import parse_id
from imap2api.graphql.types.imap_server import (
    ImapServerInput,
    ImapServerType,
    input_fields,
    to_gql_imap_server,
)
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.models import ImapServer
from imap2api.validation import validate_server

Info = strawberry.Info[Context, None]


def _create(session: Session, *, owner_id: int, data: dict) -> ImapServer:
    """Validate and create in one transaction."""
    return crud_servers.create_server(session, owner_id=owner_id, data=validate_server(data))


def _update(session: Session, *, owner_id: int, server_id: int, data: dict) -> ImapServer:
    """Validate against the stored values and update in one transaction."""
    server = crud_servers.get_server(session, owner_id=owner_id, server_id=server_id)
    clean = validate_server(data, current=crud_servers.server_fields(server))
    return crud_servers.update_server(session, owner_id=owner_id, server_id=server_id, data=clean)


@strawberry.type
class ImapServerQuery:
    """Reads of IMAP servers."""

    @strawberry.field(description="The caller's IMAP servers, oldest first.")
    async def imap_servers(
        self, info: Info, page: int = 1, page_size: int | None = None
    ) -> Page[ImapServerType]:
        """One page of servers (``page: -1`` is the last page)."""
        user = info.context.require_user()
        size = clamp_page_size(page_size, default=settings.page_size, maximum=settings.max_page_size)
        result = await info.context.db(crud_servers.list_servers, owner_id=user.id, page=page, page_size=size)
        return to_gql_page(result, to_gql_imap_server)

    @strawberry.field(description="One of the caller's IMAP servers.")
    async def imap_server(self, info: Info, id: strawberry.ID) -> ImapServerType:
        """A server by id."""
        user = info.context.require_user()
        server = await info.context.db(crud_servers.get_server, owner_id=user.id, server_id=parse_id(id))
        return to_gql_imap_server(server)


@strawberry.type
class ImapServerMutation:
    """Writes of IMAP servers."""

    @strawberry.mutation(description="Add an IMAP account to mirror.")
    async def create_imap_server(self, info: Info, input: ImapServerInput) -> ImapServerType:
        """Create a server; defaults: port 993, SSL, sync everything, exclude trash."""
        user = info.context.require_user()
        server = await info.context.db(_create, owner_id=user.id, data=input_fields(input))
        return to_gql_imap_server(server)

    @strawberry.mutation(description="Change an IMAP account; only the given fields change.")
    async def update_imap_server(
        self, info: Info, id: strawberry.ID, input: ImapServerInput
    ) -> ImapServerType:
        """Partially update a server."""
        user = info.context.require_user()
        server = await info.context.db(
            _update, owner_id=user.id, server_id=parse_id(id), data=input_fields(input)
        )
        return to_gql_imap_server(server)

    @strawberry.mutation(description="Remove an IMAP account and all of its mirrored mail.")
    async def delete_imap_server(self, info: Info, id: strawberry.ID) -> bool:
        """Delete a server."""
        user = info.context.require_user()
        await info.context.db(crud_servers.delete_server, owner_id=user.id, server_id=parse_id(id))
        return True
