"""The in-process worker that ``imap2api serve`` runs when no Redis is configured."""

from __future__ import annotations

import logging

from dramatiq import Worker

from imap2api.config import settings
from imap2api.watch.manager import start_watching, stop_watching
from imap2api.workers.lanes import start_lanes, stop_lanes
from imap2api.workers.scheduler import Scheduler

log = logging.getLogger("imap2api.workers")

_workers: list[Worker] | None = None  # one per lane (see imap2api.workers.lanes)
_scheduler: Scheduler | None = None


def start_embedded_worker() -> list[Worker]:
    """Start the worker lanes on the stub broker, the scheduler thread and the watches (idempotent)."""
    global _workers, _scheduler
    if _workers is None:
        from imap2api.workers.actors import declare_actors
        from imap2api.workers.broker import get_broker
        from imap2api.workers.recovery import recover_runs

        broker = declare_actors(get_broker())
        # Before any request can join one: the runs a dead predecessor left are failed or requeued.
        try:
            recover_runs()
        except Exception:  # noqa: BLE001 - e.g. the database still starting: their leases lapse instead
            log.exception("could not recover the sync runs of a previous process")
        _workers = start_lanes(broker, job_threads=settings.embedded_worker_threads, worker_timeout=100)
    if _scheduler is None and settings.scheduler_enabled:
        _scheduler = Scheduler()
        _scheduler.start()
    start_watching()
    return _workers


def stop_embedded_worker(timeout_seconds: float | None = None) -> None:
    """Stop the in-process worker and scheduler, letting running jobs finish for ``timeout_seconds``.

    The default is ``IMAP2API_SHUTDOWN_TIMEOUT_SECONDS``. A job still running then is left to die
    with the process (worker threads are daemons); its sync run is marked ``WORKER_LOST`` later.
    """
    global _workers, _scheduler
    stop_watching()
    if _scheduler is not None:
        _scheduler.stop()
        _scheduler = None
    if _workers is not None:
        seconds = settings.shutdown_timeout_seconds if timeout_seconds is None else timeout_seconds
        stop_lanes(_workers, seconds)
        _workers = None
