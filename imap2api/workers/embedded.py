"""The in-process worker that ``imap2api serve`` runs when no Redis is configured."""

from __future__ import annotations

import logging

from dramatiq import Worker

from imap2api.config import settings
from imap2api.workers.scheduler import Scheduler

log = logging.getLogger("imap2api.workers")

_worker: Worker | None = None
_scheduler: Scheduler | None = None


def start_embedded_worker() -> Worker:
    """Start worker threads on the stub broker, and the scheduler thread (idempotent)."""
    global _worker, _scheduler
    if _worker is None:
        from imap2api.workers import actors  # noqa: F401 - declares the actors on the broker
        from imap2api.workers.broker import broker

        _worker = Worker(broker, worker_threads=settings.embedded_worker_threads, worker_timeout=100)
        _worker.start()
        log.info("embedded worker started with %d threads", settings.embedded_worker_threads)
    if _scheduler is None and settings.scheduler_enabled:
        _scheduler = Scheduler()
        _scheduler.start()
    return _worker


def stop_embedded_worker(timeout_seconds: float | None = None) -> None:
    """Stop the in-process worker and scheduler, letting running jobs finish for ``timeout_seconds``.

    The default is ``IMAP2API_SHUTDOWN_TIMEOUT_SECONDS``. A job still running then is left to die
    with the process (worker threads are daemons); its sync run is marked ``WORKER_LOST`` later.
    """
    global _worker, _scheduler
    if _scheduler is not None:
        _scheduler.stop()
        _scheduler = None
    if _worker is not None:
        seconds = settings.shutdown_timeout_seconds if timeout_seconds is None else timeout_seconds
        _worker.stop(timeout=max(1, int(seconds * 1000)))
        # A stopped Worker leaves its middleware on the broker; a later start would stack another.
        broker = _worker.broker
        broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not _worker]
        _worker = None
