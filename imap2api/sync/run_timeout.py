"""A sync run's time bound (``IMAP2API_SYNC_RUN_TIMEOUT_SECONDS``): past it, the run's IMAP connection is cut.

A run spends its time in blocking socket reads, which no exception raised from outside can end.
Shutting the socket down from a timer thread ends the read at once, whatever the run was waiting
for; the run then fails with ``SYNC_TIMEOUT`` and its usual ending releases the lease. Every batch
it stored stays, so the next sync goes on from there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from imapclient import IMAPClient

from imap2api.errors import SyncFailed

log = logging.getLogger("imap2api.sync")

SHORTEST_READ_SECONDS = 0.05  # a socket timeout of 0 would mean non-blocking, not "at once"


class RunTimeout:
    """Bounds one run; a context manager around the run's work (``seconds`` <= 0: no bound)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds if seconds > 0 else math.inf
        self._lock = threading.Lock()
        self._client: IMAPClient | None = None
        self._expired = False
        self._cut = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> RunTimeout:
        """Start the clock."""
        if self.seconds > 0:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the clock; a run cut short, or failing past its time, fails with ``SYNC_TIMEOUT``."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            cut, late = self._cut, time.monotonic() >= self.ends
        if exc is not None and not isinstance(exc, Exception):
            return  # a worker shutting down, say: not the run's failure to report
        if cut or (exc is not None and late):
            # A cut connection may also look like "folder vanished" to the folder code, which then
            # returns normally: hence the cut flag, not only the exception, decides.
            raise SyncFailed(
                f"the sync ran longer than {self.seconds:g} seconds (IMAP2API_SYNC_RUN_TIMEOUT_SECONDS) "
                "and was stopped; the next sync continues from what was stored",
                code="SYNC_TIMEOUT",
            ) from exc

    def imap_timeout(self, seconds: float) -> float:
        """``seconds``, or the time the run has left when that is shorter (for connecting and logging in)."""
        return max(SHORTEST_READ_SECONDS, min(seconds, self.ends - time.monotonic()))

    @contextmanager
    def watching(self, client: IMAPClient) -> Iterator[None]:
        """While the block runs, the end of the run's time cuts ``client``'s connection."""
        with self._lock:
            self._client = client
            if self._expired:
                self._cut_connection(client)
        try:
            yield
        finally:
            with self._lock:
                self._client = None

    def _expire(self) -> None:
        """The timer's callback: mark the run late and cut the connection it is using, if any."""
        with self._lock:
            self._expired = True
            if self._client is not None:
                self._cut_connection(self._client)

    def _cut_connection(self, client: IMAPClient) -> None:
        """Shut the socket down (not close it: its owner thread may be reading it); called with the lock."""
        self._cut = True
        log.warning("sync run passed its time bound of %g seconds; cutting its IMAP connection", self.seconds)
        with contextlib.suppress(OSError):  # already closed
            # socket.socket's own shutdown, also on a TLS socket: SSLSocket.shutdown would drop its SSL
            # object under the reading thread's feet. The blocked read gets EOF and raises.
            socket.socket.shutdown(client.socket(), socket.SHUT_RDWR)
