"""Live subscriptions (graphql-transport-ws): new mail of a server, progress of a sync run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import strawberry

from imap2api import pubsub
from imap2api.crud import sync_runs as crud_runs
from imap2api.errors import NotFound
from imap2api.graphql.context import Context
from imap2api.graphql.types.email import EmailType, to_gql_email
from imap2api.graphql.types.sync_run import SyncRunType, to_gql_sync_run
from imap2api.ids import parse_id
from imap2api.services import mail, servers, sync

Info = strawberry.Info[Context, None]
KEEPALIVE_SECONDS = 30


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
