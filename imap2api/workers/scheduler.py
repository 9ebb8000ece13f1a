"""The scheduler: every few seconds, queue the syncs that are due and fail abandoned runs.

Each tick also relays outbox events to webhooks and re-enqueues deliveries whose message was lost.
"""

from __future__ import annotations

import logging
import threading

from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope

log = logging.getLogger("imap2api.scheduler")

TICK_SECONDS = 15


def enqueue_due_syncs() -> list[int]:
    """Queue a sync for every server whose interval has passed; returns their ids."""
    from imap2api.workers.sync import request_sync

    with session_scope() as session:
        crud_runs.fail_abandoned_runs(session)
        due = crud_runs.claim_due_servers(session, default_interval=settings.sync_interval_seconds)
    for server_id in due:
        try:
            request_sync(server_id=server_id, owner_id=None, trigger="schedule")
        except Exception:  # noqa: BLE001 - one bad server must not stop the others
            log.exception("could not queue the scheduled sync of server %s", server_id)
    return due


class Scheduler(threading.Thread):
    """A daemon thread calling ``enqueue_due_syncs`` until stopped."""

    def __init__(self, tick: float = TICK_SECONDS) -> None:
        super().__init__(name="imap2api-scheduler", daemon=True)
        self.tick = tick
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Loop until ``stop``."""
        while not self._stop_event.wait(self.tick):
            try:
                enqueue_due_syncs()
            except Exception:  # noqa: BLE001 - e.g. the database restarting; try again next tick
                log.exception("scheduler tick failed")
            try:
                from imap2api.workers.webhooks import webhook_tick

                webhook_tick()
            except Exception:  # noqa: BLE001 - as above: the next tick tries again
                log.exception("webhook tick failed")

    def stop(self) -> None:
        """Ask the loop to end."""
        self._stop_event.set()
