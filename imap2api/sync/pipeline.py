"""Overlapping two stages: a producer thread (IMAP fetch + parse) ahead of the consumer (database).

SQLite and psycopg release the GIL while the database works, so fetching and parsing the next
batch runs while the current one is indexed and committed. The queue holds ``depth`` items, which
bounds memory to a few batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    """Carries the producer's exception to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def ahead(produce: Iterator[T], *, depth: int = 1, name: str = "imap2api-ahead") -> Generator[T, None, None]:
    """The items of ``produce``, made in another thread up to ``depth`` items ahead of the reader.

    An exception in ``produce`` is raised to the reader. Once the reader stops (closes this
    generator, or leaves it on an exception) the thread stops too, and ``produce`` is closed in
    it: nothing of the producer's (its IMAP connection) is used once this generator is done.
    """
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand an item over unless the reader has given up."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
            put(_Failure(exc))
        finally:
            close = getattr(produce, "close", None)
            if close is not None:
                close()  # a nested ahead() stops its own thread here

    producer = threading.Thread(target=run, name=name, daemon=True)
    producer.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()


def pipelined(produce: Iterator[T], consume: Callable[[T], None], *, depth: int = 1) -> None:
    """Consume every item of ``produce`` in this thread while the next ones are produced in another.

    An exception in either stage stops both and is raised here.
    """
    items = ahead(produce, depth=depth, name="imap2api-fetch")
    try:
        for item in items:
            consume(item)
    finally:
        items.close()
