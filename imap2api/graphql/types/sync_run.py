"""The SyncRun type."""

from __future__ import annotations

from datetime import datetime

import strawberry

from imap2api.models import SyncRun


@strawberry.type(name="SyncRun")
class SyncRunType:
    """One sync of one server; readable while it runs (status queued, running, success or error)."""

    id: strawberry.ID
    imap_server: strawberry.ID
    status: str
    trigger: str
    progress_done: int
    progress_total: int
    folders_synced: int
    messages_new: int
    messages_updated: int
    messages_deleted: int
    bytes_fetched: float
    error: str
    error_code: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def to_gql_sync_run(run: SyncRun) -> SyncRunType:
    """Convert a SyncRun row to its GraphQL type."""
    return SyncRunType(
        id=strawberry.ID(str(run.id)),
        imap_server=strawberry.ID(str(run.imap_server_id)),
        status=run.status,
        trigger=run.trigger,
        progress_done=run.progress_done,
        progress_total=run.progress_total,
        folders_synced=run.folders_synced,
        messages_new=run.messages_new,
        messages_updated=run.messages_updated,
        messages_deleted=run.messages_deleted,
        bytes_fetched=run.bytes_fetched,
        error=run.error,
        error_code=run.error_code,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )
