"""Live subscriptions (graphql-transport-ws): new mail of a server, every change event, sync progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import strawberry

from imap2api import pubsub
from imap2api.crud import sync_runs as crud_runs
from imap2api.enums import EventType
from imap2api.errors import NotFound
from imap2api.graphql.context import Context
from imap2api.graphql.types.change_event import ChangeEventType, to_gql_change_event
from imap2api.graphql.types.email import EmailType, to_gql_email
from imap2api.graphql.types.sync_run import SyncRunType, to_gql_sync_run
from imap2api.ids import parse_id
from imap2api.services import events, mail, servers, sync

Info = strawberry.Info[Context, None]
KEEPALIVE_SECONDS = 30
# Events read per query: a transaction can record thousands (a whole folder marked read).
READ_CHUNK = 500


@strawberry.type
class Subscription:
    """Every subscription."""

    @strawberry.subscription(description="Each email that arrives on one of the caller's servers.")
    async def email_received(self, info: Info, imap_server: strawberry.ID) -> AsyncGenerator[EmailType, None]:
        """New mail as the sync stores it (never old mail found by a first sync)."""
        # The socket logged its user in at connect (see imap2api.graphql.websocket).
        run = info.context.run
        server_id = parse_id(imap_server)
        await run(servers.get, server_id)
        async with pubsub.bus().subscribe(pubsub.email_channel(server_id)) as queue:
            while True:
                message = await queue.get()
                try:
                    email = await run(mail.get, message["id"])
                except NotFound:
                    continue  # already gone again
                info.context.fresh_loaders()  # this email's thread count, not one cached earlier
                yield to_gql_email(email)

    @strawberry.subscription(
        description="Every change event of the caller's mail as it commits (the types webhooks get, "
        "docs/webhooks.md): optionally of one server (`imapServer`) and some `types` only "
        "(null or empty: all). Each carries its change feed `cursor`, to catch up after a reconnect."
    )
    async def email_changes(
        self, info: Info, imap_server: strawberry.ID | None = None, types: list[EventType] | None = None
    ) -> AsyncGenerator[ChangeEventType, None]:
        """Outbox events committed after the subscription started, oldest first within each commit."""
        run = info.context.run  # authenticates the socket's user before anything else
        owner_id = info.context.require_user().id or 0
        # Subscribed first: an event committed while the server is checked is heard, not missed.
        async with pubsub.bus().subscribe(pubsub.events_channel(owner_id)) as queue:
            server_id = None
            if imap_server is not None:
                server_id = parse_id(imap_server)
                await run(servers.get, server_id)
            while True:
                ids = (await queue.get())["ids"]
                for start in range(0, len(ids), READ_CHUNK):
                    chunk = ids[start : start + READ_CHUNK]
                    for event in await run(events.get_many, chunk, server_id=server_id, types=types):
                        info.context.fresh_loaders()  # its email's thread count, not one cached earlier
                        yield to_gql_change_event(event)

    @strawberry.subscription(description="A sync run's state now and at every stored batch, until it ends.")
    async def sync_progress(self, info: Info, run_id: strawberry.ID) -> AsyncGenerator[SyncRunType, None]:
        """Progress of a run; the last item has status success or error."""
        run_as_user = info.context.run
        run_number = parse_id(run_id)
        async with pubsub.bus().subscribe(pubsub.run_channel(run_number)) as queue:
            while True:
                run = await run_as_user(sync.get_run, run_number)
                info.context.fresh_loaders()
                yield to_gql_sync_run(run)
                if run.status not in crud_runs.ACTIVE:
                    return
                with contextlib.suppress(TimeoutError):  # re-read anyway: a hint may have been lost
                    await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
