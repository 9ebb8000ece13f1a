"""The sync actors; asking for a sync and waiting for it is ``imap2api.services.sync``."""

from __future__ import annotations

import logging
import time

from imap2api import pubsub
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.enums import SyncStatus, SyncTrigger
from imap2api.errors import NotFound
from imap2api.services import jobs
from imap2api.sync.engine import LeaseBusy, run_sync
from imap2api.sync.lease import ServerGone
from imap2api.watch.manager import wake_watching

log = logging.getLogger("imap2api.workers")

LEASE_RETRY_DELAY_MS = 5_000
LEASE_RETRY_LIMIT_S = 6 * 3600


def _sync(server_id: int, run_id: int | None, first_try: float | None, *, scheduled: bool) -> None:
    """Run a sync of ``server_id`` (the queued run ``run_id``, or a fresh scheduled one)."""
    try:
        if run_id is None:
            with session_scope() as session:
                server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
                run_id = crud_runs.start_run(session, server=server, trigger=SyncTrigger.SCHEDULE)[0].id
        finished = run_sync(run_id or 0)
        if finished.status == SyncStatus.SUCCESS:
            wake_watching()  # a server whose first sync this was is watched now, not at the next tick
        # The run's events are committed: hand them to the webhook relay now, not at the next tick.
        jobs.send(jobs.dispatch_job())
        if finished.status != SyncStatus.SUCCESS or finished.messages_new:
            # Its new emails are queued for the search index: build it now that the run is over. A run
            # that stored none (an idle account's) needs no indexer; the scheduler's tick catches up anyway.
            jobs.send(jobs.index_job())
    except LeaseBusy:
        # Another worker is on this server; come back when it is likely done, within limits.
        first_try = first_try or time.time()
        if time.time() - first_try > LEASE_RETRY_LIMIT_S:
            with session_scope() as session:
                crud_runs.update_run(
                    session,
                    run_id=run_id or 0,
                    status=SyncStatus.ERROR,
                    error_code="LEASE_TIMEOUT",
                    error="another sync of this server never finished",
                )
            pubsub.publish(pubsub.run_channel(run_id or 0), {"status": "error"})
            return
        retry = jobs.sync_job(
            server_id, run_id, scheduled=scheduled, first_try=first_try, delay_ms=LEASE_RETRY_DELAY_MS
        )
        jobs.send(retry)
    except ServerGone as exc:
        # Deleted while the sync waited or ran: nothing is left to sync, to store or to retry.
        log.info("%s; the sync stopped", exc)
    except NotFound:
        log.info("server %s was deleted before its scheduled sync", server_id)


def sync_server(server_id: int, run_id: int | None = None, first_try: float | None = None) -> None:
    """Run a sync someone asked for (API, GraphQL, admin), in the requested-syncs lane."""
    _sync(server_id, run_id, first_try, scheduled=False)


def sync_server_scheduled(server_id: int, run_id: int | None = None, first_try: float | None = None) -> None:
    """Run a sync the scheduler queued, in the scheduled-syncs lane."""
    _sync(server_id, run_id, first_try, scheduled=True)
