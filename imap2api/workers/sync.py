"""The sync actor, and how the API and the scheduler ask for a sync."""

from __future__ import annotations

import logging
import time

import dramatiq

from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.models import SyncRun
from imap2api.sync.engine import LeaseBusy, run_sync
from imap2api.workers import broker as _broker  # noqa: F401 - binds the actor to the configured broker

log = logging.getLogger("imap2api.workers")

LEASE_RETRY_DELAY_MS = 5_000
LEASE_RETRY_LIMIT_S = 6 * 3600


@dramatiq.actor(queue_name="sync", max_retries=0, time_limit=6 * 3600 * 1000)
def sync_server(server_id: int, run_id: int | None = None, first_try: float | None = None) -> None:
    """Run a sync of ``server_id`` (the queued run ``run_id``, or a fresh one)."""
    if run_id is None:
        with session_scope() as session:
            server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
            run_id = crud_runs.start_run(session, server=server, trigger="schedule")[0].id
    try:
        run_sync(run_id or 0)
        # The run's events are committed: hand them to the webhook relay now, not at the next tick.
        # Its new emails are queued for the search index: build it now that the run is over.
        from imap2api.workers.search_index import index_search
        from imap2api.workers.webhooks import dispatch_events

        dispatch_events.send()
        index_search.send()
    except LeaseBusy:
        # Another worker is on this server; come back when it is likely done, within limits.
        first_try = first_try or time.time()
        if time.time() - first_try > LEASE_RETRY_LIMIT_S:
            with session_scope() as session:
                crud_runs.update_run(session, run_id=run_id, status="error", error_code="LEASE_TIMEOUT",
                                     error="another sync of this server never finished")
            return
        sync_server.send_with_options(args=(server_id, run_id, first_try), delay=LEASE_RETRY_DELAY_MS)


def request_sync(*, server_id: int, owner_id: int | None, trigger: str = "manual") -> SyncRun:
    """Queue a sync of a server, or join the one already queued or running.

    The message is sent after the run row commits, so the worker always finds it.
    """
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=owner_id, server_id=server_id)
        run, created = crud_runs.start_run(session, server=server, trigger=trigger)
    if created:
        sync_server.send(server_id, run.id)
    return run


def wait_for_run(run_id: int, *, timeout: float, interval: float = 0.1) -> SyncRun:
    """Poll a run until it finishes or ``timeout`` seconds pass; returns it either way."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            run = crud_runs.get_run(session, run_id=run_id)
        if run.status not in crud_runs.ACTIVE or time.monotonic() >= deadline:
            return run
        time.sleep(interval)
        interval = min(interval * 1.5, 1.0)
