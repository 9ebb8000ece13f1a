"""A loopback TCP service that greets every client with fixed bytes (an SSH banner, say) and counts them.

It stands for any internal service the worker can reach: what it says must never reach the API caller.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class BannerServer:
    """Listens on 127.0.0.1; each connection gets ``banner``, then is read until the client hangs up."""

    host = "127.0.0.1"

    def __init__(self, banner: bytes) -> None:
        """Prepare (not start) the service."""
        self.banner = banner
        self.connections = 0
        self.received = b""
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((self.host, 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> BannerServer:
        """Start accepting."""
        self._listener.listen(8)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop accepting and wait for the thread."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        self._listener.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by __exit__
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                conn.sendall(self.banner)
                while chunk := conn.recv(4096):
                    with self._lock:
                        self.received += chunk
            except OSError:
                pass
