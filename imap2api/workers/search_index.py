"""The search indexer: takes emails a sync queued into the search index, after the run.

Sent by ``sync_server`` when a run ends and by the scheduler while anything is queued; idempotent
and safe to run several at once (each chunk is claimed in its own transaction). SQLite: into FTS5;
PostgreSQL: into the partial trigram indexes (``imap2api.crud.search_index``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from imap2api.crud import search_index as crud_search_index
from imap2api.db import get_engine, session_scope
from imap2api.services import jobs

# SQLite has one writer at a time, and a writer that finds the lock taken sleeps and polls (the
# busy handler: every few ms at first, every 100 ms after a while). Short transactions with a pause
# between them let a sync's writes in within a few ms, even while a big catch-up runs.
SQLITE_TRANSACTION_SECONDS = 0.025
SQLITE_PAUSE_SECONDS = 0.015


def index_all_pending(*, on_progress: Callable[[int], None] | None = None) -> int:
    """Index every queued email, one chunk per transaction; returns how many were indexed."""
    sqlite = get_engine().dialect.name == "sqlite"
    seconds = SQLITE_TRANSACTION_SECONDS if sqlite else None
    total = 0
    while True:
        with session_scope() as session:
            done = crud_search_index.index_pending(session, seconds=seconds)
        if not done:
            return total
        total += done
        if on_progress is not None:
            on_progress(total)
        if sqlite:
            time.sleep(SQLITE_PAUSE_SECONDS)


def index_search() -> None:
    """Index everything queued for search."""
    index_all_pending()


def search_index_tick() -> None:
    """The scheduler's share: queue the indexer when emails wait (after a crash, or a CLI sync)."""
    with session_scope() as session:
        waiting = crud_search_index.pending_count(session)
    if waiting:
        jobs.send(jobs.index_job())
