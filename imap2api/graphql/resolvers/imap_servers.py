"""Queries and mutations on IMAP servers."""

from __future__ import annotations

import strawberry

from imap2api.graphql.context import Context
from imap2api.graphql.types.imap_server import (
    ImapConnectionTestType,
    ImapServerInput,
    ImapServerType,
    input_fields,
    to_gql_connection_test,
    to_gql_imap_server,
)
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.ids import parse_id
from imap2api.services import connection_check, servers

Info = strawberry.Info[Context, None]


@strawberry.type
class ImapServerQuery:
    """Reads of IMAP servers."""

    @strawberry.field(description="The caller's IMAP servers, oldest first.")
    async def imap_servers(
        self, info: Info, page: int = 1, page_size: int | None = None, last_page: bool = False
    ) -> Page[ImapServerType]:
        """One page of servers (``lastPage``: the last one, whatever ``page`` says)."""
        result = await info.context.run(servers.page, number=page, size=page_size, last=last_page)
        return to_gql_page(result, to_gql_imap_server)

    @strawberry.field(description="One of the caller's IMAP servers.")
    async def imap_server(self, info: Info, id: strawberry.ID) -> ImapServerType:
        """A server by id."""
        return to_gql_imap_server(await info.context.run(servers.get, parse_id(id)))


@strawberry.type
class ImapServerMutation:
    """Writes of IMAP servers."""

    @strawberry.mutation(description="Add an IMAP account to mirror.")
    async def create_imap_server(self, info: Info, input: ImapServerInput) -> ImapServerType:
        """Create a server; defaults: port 993, SSL, sync everything, exclude trash."""
        return to_gql_imap_server(await info.context.run(servers.create, input_fields(input)))

    @strawberry.mutation(
        description="Log in with these settings (as createImapServer takes them) and list the folders; "
        "nothing is stored. A failed login is ok false with its code; invalid settings are an error."
    )
    async def test_imap_server(self, info: Info, input: ImapServerInput) -> ImapConnectionTestType:
        """Test a connection before creating the server."""
        info.context.require_user()  # the test connects out: callers with a token only
        return to_gql_connection_test(await connection_check.check_settings(input_fields(input)))

    @strawberry.mutation(description="Change an IMAP account; only the given fields change.")
    async def update_imap_server(
        self, info: Info, id: strawberry.ID, input: ImapServerInput
    ) -> ImapServerType:
        """Partially update a server."""
        server = await info.context.run(servers.update, parse_id(id), input_fields(input))
        return to_gql_imap_server(server)

    @strawberry.mutation(description="Remove an IMAP account and all of its mirrored mail.")
    async def delete_imap_server(self, info: Info, id: strawberry.ID) -> bool:
        """Delete a server."""
        await info.context.run(servers.delete, parse_id(id))
        return True
