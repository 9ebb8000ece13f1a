"""Queues whose idle readers can be woken, so that stopping the lanes does not wait out their polls.

A Dramatiq worker thread, and a consumer of the in-process stub broker, wait for work in
``queue.get(timeout=...)`` and look at their stop flag only between two waits: each stop of the
lanes waited out one poll of the worker threads and then one of the consumers (0.2 s in all with
``serve``'s 100 ms polls, which the test suite paid once per test). Once a queue is woken, a get on it
while it is empty raises ``Empty`` at once instead of waiting, until it is put back to sleep.
``imap2api.workers.lanes`` wakes each queue only after the threads reading it were told to stop:
a running reader would spin.
"""

from __future__ import annotations

import time
from queue import Empty, PriorityQueue, Queue
from typing import Any


class Wakeable:
    """A ``queue.Queue`` mixin: ``wake`` ends the waits on the empty queue, ``sleep`` undoes it."""

    woken = False
    # Provided by queue.Queue.
    mutex: Any
    not_empty: Any
    not_full: Any
    _qsize: Any
    _get: Any

    def wake(self) -> None:
        """Make every waiting and later get on the empty queue raise Empty at once."""
        with self.mutex:
            self.woken = True
            self.not_empty.notify_all()

    def sleep(self) -> None:
        """Let gets wait for items again."""
        with self.mutex:
            self.woken = False

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """``queue.Queue.get``, but never waiting while woken."""
        with self.not_empty:
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            while not self._qsize():
                remaining = None if deadline is None else deadline - time.monotonic()
                if self.woken or not block or (remaining is not None and remaining <= 0):
                    raise Empty
                self.not_empty.wait(remaining)
            item = self._get()
            self.not_full.notify()
            return item


class WakeableQueue(Wakeable, Queue):  # type: ignore[type-arg]
    """A FIFO queue that can be woken (the stub broker's queues)."""


class WakeablePriorityQueue(Wakeable, PriorityQueue):  # type: ignore[type-arg]
    """A priority queue that can be woken (a Dramatiq worker's work queue)."""


def wake_all(queues: list[Any]) -> None:
    """Wake each of ``queues`` that can be woken."""
    for queue in queues:
        if isinstance(queue, Wakeable):
            queue.wake()


def sleep_all(queues: list[Any]) -> None:
    """Put each of ``queues`` that can be woken back to sleep."""
    for queue in queues:
        if isinstance(queue, Wakeable):
            queue.sleep()
