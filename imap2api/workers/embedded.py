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


def stop_embedded_worker() -> None:
    """Stop the in-process worker and scheduler, letting running jobs finish."""
    global _worker, _scheduler
    if _scheduler is not None:
        _scheduler.stop()
        _scheduler = None
    if _worker is not None:
        _worker.stop()
        # A stopped Worker leaves its middleware on the broker; a later start would stack another.
        broker = _worker.broker
        broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not _worker]
        _worker = None
