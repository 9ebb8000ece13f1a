"""One ``imap2api worker`` process: the worker lanes on the Redis broker until SIGTERM or SIGINT.

``imap2api worker`` starts ``WORKER_PROCESSES`` of these (``python -m imap2api.workers.process``).
They run the same lanes as the embedded worker of ``serve`` (see imap2api.workers.lanes), which the
Dramatiq command line cannot: it gives every queue of a process one shared pool of threads.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading


def main(argv: list[str] | None = None) -> None:
    """Run the lanes and the watches until a stop signal; running jobs get ``SHUTDOWN_TIMEOUT_SECONDS``."""
    parser = argparse.ArgumentParser(prog="python -m imap2api.workers.process")
    parser.add_argument("--threads", type=int, default=None, help="threads for jobs other than syncs")
    args = parser.parse_args(argv)

    from imap2api.config import settings
    from imap2api.logs import configure_logging

    configure_logging()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _number, _frame: stopping.set())

    from imap2api.workers.actors import declare_actors
    from imap2api.workers.broker import get_broker
    from imap2api.workers.lanes import start_lanes, stop_lanes

    broker = declare_actors(get_broker())
    broker.emit_after("process_boot")  # what Dramatiq's command line does first (TimeLimit starts here)
    workers = start_lanes(broker, job_threads=args.threads or settings.worker_threads)
    from imap2api.watch.manager import start_watching, stop_watching

    start_watching()
    parent = os.getppid()
    # Also stop when ``imap2api worker`` is gone (killed outright, it forwarded no signal): no orphans.
    while not stopping.wait(1) and os.getppid() == parent:
        pass
    stop_watching()  # first: the leases go back at once, so the other processes take over
    stop_lanes(workers, settings.shutdown_timeout_seconds)
    broker.close()


if __name__ == "__main__":
    main()
