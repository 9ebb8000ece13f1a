"""The search indexer: moves emails a sync queued into the SQLite FTS5 index, after the run.

Sent by ``sync_server`` when a run ends and by the scheduler while anything is queued; idempotent
and safe to run several at once (each chunk is claimed in its own transaction). A no-op on
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

from imap2api.crud import search_index as crud_search_index
from imap2api.db import session_scope
from imap2api.services import jobs


def index_all_pending(*, on_progress: Callable[[int], None] | None = None) -> int:
    """Index every queued email, one chunk per transaction; returns how many were indexed."""
    total = 0
    while True:
        with session_scope() as session:
            done = crud_search_index.index_pending(session)
        if not done:
            return total
        total += done
        if on_progress is not None:
            on_progress(total)


def index_search() -> None:
    """Index everything queued for search."""
    index_all_pending()


def search_index_tick() -> None:
    """The scheduler's share: queue the indexer when emails wait (after a crash, or a CLI sync)."""
    with session_scope() as session:
        waiting = crud_search_index.pending_count(session)
    if waiting:
        jobs.send(jobs.index_job())
