"""The SyncRun type, derived from ``models.SyncRunPublic``."""

from __future__ import annotations

from imap2api.graphql import derive
from imap2api.models import SyncRun, SyncRunPublic


@derive.output_type(
    SyncRunPublic,
    name="SyncRun",
    first=("id", "imap_server"),
    ids=("imap_server",),
    # A run can fetch more than 2 GB: beyond GraphQL's 32-bit Int.
    types={"bytes_fetched": float},
    sources={"imap_server": "imap_server_id"},
)
class SyncRunType:
    """One sync of one server; readable while it runs."""


def to_gql_sync_run(run: SyncRun) -> SyncRunType:
    """Convert a SyncRun row to its GraphQL type."""
    return derive.to_gql(SyncRunType, run)
