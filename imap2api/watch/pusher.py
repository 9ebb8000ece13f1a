"""The push syncs of a process: what the watches heard, gathered per server and synced by a small pool.

Notices about one server that come within ``IMAP2API_WATCH_DEBOUNCE_MS`` of each other make one
push sync (a move announces two folders at once); notices arriving while a server's push sync
runs make the next one. A server is never push-synced twice at once, and one whose sync lease is
taken (a scheduled run) is tried again every ``BUSY_RETRY_SECONDS`` until it is free, so nothing
heard is lost.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from imap2api.errors import SyncFailed
from imap2api.sync.engine import LeaseBusy
from imap2api.sync.lease import ServerGone
from imap2api.sync.push import PushOutcome, push_sync

log = logging.getLogger("imap2api.watch")

BUSY_RETRY_SECONDS = 1.0
FAILED_RETRY_SECONDS = 30.0


@dataclass
class _Pending:
    """What is still to sync of one server: folder names, or None for all of them."""

    folders: set[str] | None = field(default_factory=set)
    due: float = 0.0

    def add(self, folders: Iterable[str] | None) -> None:
        """Merge more folders in (None: all)."""
        if folders is None or self.folders is None:
            self.folders = None
        else:
            self.folders.update(folders)


class Pusher:
    """Debounces notices per server and runs their push syncs on ``threads`` threads."""

    def __init__(
        self,
        *,
        threads: int,
        debounce_seconds: float,
        sync: Callable[[int, frozenset[str] | None], PushOutcome] = push_sync,
    ) -> None:
        self.debounce = debounce_seconds
        self._sync = sync
        self._cond = threading.Condition()
        self._pending: dict[int, _Pending] = {}
        self._running: set[int] = set()
        self._heap: list[tuple[float, int]] = []
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imap2api-push")
        self._thread = threading.Thread(target=self._loop, name="imap2api-pusher", daemon=True)
        self._thread.start()

    def notice(self, server_id: int, folders: Iterable[str] | None, *, delay: float | None = None) -> None:
        """Something changed in ``folders`` of a server (None: anywhere); sync it after the debounce."""
        with self._cond:
            self._add(server_id, folders, time.monotonic() + (self.debounce if delay is None else delay))

    def _add(self, server_id: int, folders: Iterable[str] | None, due: float) -> None:
        """``notice`` with the lock held."""
        pending = self._pending.get(server_id)
        if pending is None:
            pending = self._pending[server_id] = _Pending(due=due)
        elif due < pending.due:
            pending.due = due
        pending.add(folders)
        heapq.heappush(self._heap, (pending.due, server_id))
        self._cond.notify()

    def forget(self, server_id: int) -> None:
        """Drop what is pending for a server (no longer watched here)."""
        with self._cond:
            self._pending.pop(server_id, None)

    def idle(self) -> bool:
        """Whether nothing is pending or running (for tests and benchmarks)."""
        with self._cond:
            return not self._pending and not self._running

    def _loop(self) -> None:
        """Start each server's push sync when it is due and the server has none running."""
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, server_id = heapq.heappop(self._heap)
                    pending = self._pending.get(server_id)
                    if pending is None or server_id in self._running or pending.due > now:
                        continue  # done, running (it comes back when that ends) or re-timed
                    del self._pending[server_id]
                    self._running.add(server_id)
                    folders = None if pending.folders is None else frozenset(pending.folders)
                    self._pool.submit(self._run, server_id, folders)
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)

    def _run(self, server_id: int, folders: frozenset[str] | None) -> None:
        """One push sync; what it could not do is pending again."""
        retry: float | None = None
        log.debug("push sync of server %s: %s", server_id, sorted(folders) if folders else "every folder")
        try:
            outcome = self._sync(server_id, folders)
            log.log(
                logging.INFO if outcome.events else logging.DEBUG,
                "push sync of server %s: %s new, %s updated, %s deleted in %.3f s",
                server_id,
                outcome.new,
                outcome.updated,
                outcome.deleted,
                outcome.seconds,
            )
        except LeaseBusy:
            retry = BUSY_RETRY_SECONDS
        except ServerGone:
            log.info("server %s was deleted; its push sync stopped", server_id)
        except SyncFailed as exc:
            log.warning("push sync of server %s failed: %s", server_id, exc.message)
            retry = FAILED_RETRY_SECONDS
        except Exception:  # noqa: BLE001 - one server's failure must not stop the pusher
            log.exception("push sync of server %s crashed", server_id)
            retry = FAILED_RETRY_SECONDS
        with self._cond:
            self._running.discard(server_id)
            if retry is not None and not self._stopped:
                self._add(server_id, folders, time.monotonic() + retry)
            pending = self._pending.get(server_id)
            if pending is not None:
                heapq.heappush(self._heap, (pending.due, server_id))  # heard while it ran
            self._cond.notify()

    def stop(self) -> None:
        """Stop starting push syncs; those running finish on their own."""
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)
