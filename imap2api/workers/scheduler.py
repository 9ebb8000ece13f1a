"""The scheduler: every few seconds, queue the syncs that are due and fail abandoned runs.

Each tick also relays outbox events to webhooks, re-enqueues deliveries and outgoing messages whose
job was lost and queues the search indexer while emails wait for it; once an hour it refreshes idle
OAuth2 tokens (imap2api.workers.oauth2) and prunes history (finished outgoing messages included) older than
``IMAP2API_HISTORY_RETENTION_DAYS`` and the change feed's tombstones older than
``IMAP2API_CHANGES_RETENTION_DAYS``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from imap2api.config import settings
from imap2api.crud import changes as crud_changes
from imap2api.crud import outbox as crud_outbox
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud.history import Pruned, prune_history
from imap2api.db import session_scope
from imap2api.models import utcnow
from imap2api.services import sync

log = logging.getLogger("imap2api.scheduler")

TICK_SECONDS = 15
PRUNE_EVERY_SECONDS = 3600


CLAIM_BATCH = 500  # servers claimed per transaction; a tick claims batches until none is due
MAX_CLAIMED_PER_TICK = 20_000  # a bound on one tick's work, should claims never run out
QUEUE_BATCH = 500  # scheduled runs created per transaction (one INSERT each)


def enqueue_due_syncs() -> list[int]:
    """Queue a sync for every server whose interval has passed; returns their ids.

    Every due server is queued in the same tick (batch after batch), not a hundred per tick: a
    thousand accounts added at once, or due together, all reach the sync lanes within a second, and
    the lanes take them in the order queued (bench.accounts measures the fairness).
    """
    with session_scope() as session:
        crud_runs.fail_abandoned_runs(session)
    due: list[int] = []
    while len(due) < MAX_CLAIMED_PER_TICK:
        with session_scope() as session:
            claimed = crud_runs.claim_due_servers(
                session, default_interval=settings.sync_interval_seconds, limit=CLAIM_BATCH
            )
        due += claimed
        if len(claimed) < CLAIM_BATCH:
            break
    for start in range(0, len(due), QUEUE_BATCH):
        _queue(due[start : start + QUEUE_BATCH])
    return due


def _queue(server_ids: list[int]) -> None:
    """Queue a scheduled sync of each server, in one transaction; the jobs go after it commits."""
    try:
        with session_scope() as session:
            sync.request_scheduled(session, server_ids)
    except Exception:  # noqa: BLE001 - the next batch may fare better; these come back at their interval
        log.exception("could not queue the scheduled syncs of %d servers", len(server_ids))


def prune_old_history() -> Pruned | None:
    """Delete finished events, deliveries and sync runs past the retention period (0: keep all)."""
    if settings.history_retention_days <= 0:
        return None
    with session_scope() as session:
        before = utcnow() - timedelta(days=settings.history_retention_days)
        pruned = prune_history(session, before=before)
        outgoing = crud_outbox.prune_finished(session, before=before)
    if outgoing:
        log.info("pruned %s finished outgoing messages", outgoing)
    if pruned.events or pruned.sync_runs:
        log.info(
            "pruned %s events, %s deliveries and %s sync runs older than %s days",
            pruned.events,
            pruned.deliveries,
            pruned.sync_runs,
            settings.history_retention_days,
        )
    return pruned


def prune_old_changes() -> int | None:
    """Delete the change feed's tombstones past their retention (0: keep all); cursors before expire."""
    if settings.changes_retention_days <= 0:
        return None
    with session_scope() as session:
        pruned = crud_changes.prune_tombstones(
            session, before=utcnow() - timedelta(days=settings.changes_retention_days)
        )
    if pruned:
        log.info("pruned %s email tombstones older than %s days", pruned, settings.changes_retention_days)
    return pruned


class Scheduler(threading.Thread):
    """A daemon thread running the periodic tasks every ``tick`` seconds until stopped."""

    def __init__(self, tick: float = TICK_SECONDS) -> None:
        super().__init__(name="imap2api-scheduler", daemon=True)
        self.tick = tick
        self._stop_event = threading.Event()
        self._pruned_at = 0.0

    def _due_tasks(self) -> list[Callable[[], object]]:
        """This tick's tasks: syncs, webhooks and the search index always; pruning hourly."""
        from imap2api.workers.oauth2 import keepalive_tick
        from imap2api.workers.search_index import search_index_tick
        from imap2api.workers.sending import send_tick
        from imap2api.workers.webhooks import webhook_tick

        tasks: list[Callable[[], object]] = [enqueue_due_syncs, webhook_tick, search_index_tick, send_tick]
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = time.monotonic()
            tasks += [prune_old_history, prune_old_changes, keepalive_tick]
        return tasks

    def run(self) -> None:
        """Loop until ``stop``."""
        while not self._stop_event.wait(self.tick):
            try:
                tasks = self._due_tasks()
            except Exception:  # noqa: BLE001 - an import failing once must not end the scheduler for good
                log.exception("the scheduler could not list its tasks")
                continue
            for task in tasks:
                try:
                    task()
                except Exception:  # noqa: BLE001 - e.g. the database restarting: the next tick tries again
                    log.exception("scheduler task %s failed", task.__name__)

    def stop(self) -> None:
        """Ask the loop to end."""
        self._stop_event.set()
