"""Worker lanes: one thread pool per kind of job, so that no kind waits behind another.

- requested syncs (queue ``sync``: REST, GraphQL, admin): ``SYNC_REQUEST_THREADS`` threads;
- scheduled syncs (queue ``sync_scheduled``): ``SYNC_WORKER_THREADS`` threads;
- every other job (webhook deliveries, the search indexer): ``EMBEDDED_WORKER_THREADS`` inside
  ``serve``, ``WORKER_THREADS`` in each ``imap2api worker`` process.

A sync mostly waits on its IMAP server, and a thread blocked in a read costs little (a socket and a
stack), so sync lanes can be wide; a hung server holds one thread for at most
``SYNC_RUN_TIMEOUT_SECONDS``. Each lane is a Dramatiq ``Worker`` restricted to its queues.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq
from dramatiq import Worker
from dramatiq.common import q_name

from imap2api.config import settings
from imap2api.services import jobs
from imap2api.workers.wakeable import WakeablePriorityQueue, sleep_all, wake_all

log = logging.getLogger("imap2api.workers")

REQUESTED_QUEUE = jobs.REQUESTED_SYNCS
SCHEDULED_QUEUE = jobs.SCHEDULED_SYNCS
SYNC_QUEUES = frozenset({REQUESTED_QUEUE, SCHEDULED_QUEUE})
JOBS_LANE_POLL_MS = 100  # the jobs lane's longest wait between two polls of an idle queue
SLOWEST_LANE_STOP_MS = 1000  # a lane stopped past the shared deadline still gets this to hand back messages


class _OneWorkerPerLane(logging.Filter):
    """Drops Dramatiq's warning about a second worker middleware: each lane adds one, as intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every other record."""
        return not (
            record.getMessage().startswith("You're adding a middleware of the same type twice")
            and "_WorkerMiddleware" in record.getMessage()
        )


def _lane_queues(broker: dramatiq.Broker, job_threads: int) -> list[tuple[str, set[str], int]]:
    """(name, queues, threads) of each lane with something to consume."""
    others = {q_name(queue) for queue in broker.get_declared_queues()} - SYNC_QUEUES
    lanes = [
        ("requested syncs", {REQUESTED_QUEUE}, settings.sync_request_threads),
        ("scheduled syncs", {SCHEDULED_QUEUE}, settings.sync_worker_threads),
        ("jobs", others, job_threads),
    ]
    # An empty queue set would mean "every queue" to Dramatiq: such a lane is left out.
    return [(name, queues, max(1, count)) for name, queues, count in lanes if queues]


def start_lanes(broker: dramatiq.Broker, *, job_threads: int, worker_timeout: int = 1000) -> list[Worker]:
    """Start one Worker per lane on ``broker`` (its actors must be declared already)."""
    if not any(isinstance(f, _OneWorkerPerLane) for f in broker.logger.filters):
        broker.logger.addFilter(_OneWorkerPerLane())
    workers = []
    sleep_all(_broker_queues(broker))  # woken by an earlier stop of lanes on this broker
    for name, queues, threads in _lane_queues(broker, job_threads):
        # An idle Redis consumer polls at most every worker_timeout ms: webhooks must not wait a second.
        timeout = min(worker_timeout, JOBS_LANE_POLL_MS) if not queues & SYNC_QUEUES else worker_timeout
        worker = Worker(broker, queues=queues, worker_threads=threads, worker_timeout=timeout)
        worker.work_queue = WakeablePriorityQueue()  # before start: its threads are handed this one
        worker.start()
        workers.append(worker)
        log.info("lane %r started with %d threads (queues %s)", name, threads, ", ".join(sorted(queues)))
    return workers


def _broker_queues(broker: dramatiq.Broker) -> list[Any]:
    """The in-process broker's queues (a Redis broker's ``queues`` is a set of names)."""
    queues = getattr(broker, "queues", None)
    return list(queues.values()) if isinstance(queues, dict) else []


def stop_lanes(workers: list[Worker], seconds: float) -> None:
    """Stop the lanes, letting running jobs finish within ``seconds`` in all (not per lane).

    As Dramatiq's ``Worker.stop`` does, but for every lane at once and without waiting out idle
    threads' polls (``imap2api.workers.wakeable``): worker threads first, then, once they are done
    (or the time is up), the consumers, which kept the broker's heartbeats going meanwhile.
    """
    deadline = time.monotonic() + seconds
    # Every lane stops taking jobs at once, so that their running jobs finish side by side.
    threads = [thread for worker in workers for thread in worker.workers]
    for thread in threads:
        thread.stop()
    wake_all([worker.work_queue for worker in workers])
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    consumers = [thread for worker in workers for thread in worker.consumers.values()]
    for consumer in consumers:
        consumer.stop()
    if workers:
        wake_all(_broker_queues(workers[0].broker))
    for worker in workers:
        left_ms = int((deadline - time.monotonic()) * 1000)
        worker.stop(timeout=max(SLOWEST_LANE_STOP_MS, left_ms))
        # A stopped Worker leaves its middleware on the broker; a later start would stack another.
        broker = worker.broker
        broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]
