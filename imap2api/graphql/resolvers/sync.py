"""Starting syncs and reading their runs."""

from __future__ import annotations

import strawberry

from imap2api.config import settings
from imap2api.enums import SyncStatus
from imap2api.errors import SyncFailed
from imap2api.graphql.context import Context
from imap2api.graphql.cost import ListSize
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.graphql.types.sync_run import SyncRunType, to_gql_sync_run
from imap2api.ids import parse_id
from imap2api.services import sync
from imap2api.timeouts import extend_deadline

Info = strawberry.Info[Context, None]
SYNC_RUNS = ListSize("limit", default=lambda: 20, maximum=lambda: sync.MAX_RUNS)


@strawberry.type
class SyncQuery:
    """Reads of sync runs."""

    @strawberry.field(description="One sync run of one of the caller's servers.")
    async def sync_run(self, info: Info, id: strawberry.ID) -> SyncRunType:
        """A run by id."""
        return to_gql_sync_run(await info.context.run(sync.get_run, parse_id(id)))

    @strawberry.field(
        description="The newest sync runs of a server, newest first.", metadata=SYNC_RUNS.metadata
    )
    async def sync_runs(self, info: Info, imap_server: strawberry.ID, limit: int = 20) -> list[SyncRunType]:
        """Recent runs of a server (at most 100)."""
        runs = await info.context.run(sync.runs_of, parse_id(imap_server), limit=limit)
        return [to_gql_sync_run(run) for run in runs]

    @strawberry.field(
        description="A server's sync runs, newest first, paginated: every run of the last "
        "IMAP2API_HISTORY_RETENTION_DAYS, and always the latest."
    )
    async def sync_run_history(
        self,
        info: Info,
        imap_server: strawberry.ID,
        page: int = 1,
        page_size: int | None = None,
        last_page: bool = False,
    ) -> Page[SyncRunType]:
        """One page of a server's runs (``lastPage``: the last one, whatever ``page`` says)."""
        result = await info.context.run(
            sync.history, parse_id(imap_server), number=page, size=page_size, last=last_page
        )
        return to_gql_page(result, to_gql_sync_run)


@strawberry.type
class SyncMutation:
    """Starting syncs."""

    @strawberry.mutation(description="Sync a server now; with wait (default) answer when it is done.")
    async def sync_imap_server(self, info: Info, id: strawberry.ID, wait: bool = True) -> SyncRunType:
        """Queue a sync (or join the running one); a waited sync that fails raises its error code."""
        run = await info.context.run(sync.request, parse_id(id))
        if wait:
            # Waiting is this request's job: its time bound is the wait, plus the usual bound for the rest.
            extend_deadline(settings.sync_wait_timeout_seconds + settings.request_timeout_seconds)
            # Waited on the run's channel, not in a thread: the thread pool serves every request's queries.
            run = await sync.wait_for_run(run.id or 0, timeout=settings.sync_wait_timeout_seconds)
            if run.status == SyncStatus.ERROR:
                raise SyncFailed(run.error, code=run.error_code or "SYNC_FAILED", run_id=run.id)
        return to_gql_sync_run(run)
