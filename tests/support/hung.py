"""A loopback IMAP server that stops answering at a chosen stage, as a hung or overloaded server does.

Stages: ``connect`` accepts and never says a word; ``greeting`` greets, then is silent; ``login``
answers CAPABILITY and LOGIN (clear text: servers using it get ``tls_mode`` ``none``), then is
silent, so a sync hangs after it has logged in. Connections stay open until ``close``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

STAGES = ("connect", "greeting", "login")


class HungImapServer:
    """Listens on 127.0.0.1 and hangs every client at ``stage``."""

    host = "127.0.0.1"

    def __init__(self, stage: str = "connect") -> None:
        """Start listening (and accepting) at once."""
        assert stage in STAGES, stage
        self.stage = stage
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener = socket.create_server((self.host, 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        """How many clients have connected so far."""
        with self._lock:
            return len(self._connections)

    def __enter__(self) -> HungImapServer:
        """The server (already listening)."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Hang up on everyone."""
        self.close()

    def close(self) -> None:
        """Stop accepting and drop every connection: the clients' reads end at once."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        self._listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._connections.append(conn)
            if self.stage != "connect":
                threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        """Greet; at the login stage answer CAPABILITY and LOGIN too; ignore everything else."""
        with contextlib.suppress(OSError):
            conn.sendall(b"* OK IMAP4rev1 ready\r\n")
            if self.stage == "greeting":
                return  # the connection stays open, silent
            for line in conn.makefile("rb"):
                tag, _, rest = line.decode(errors="replace").partition(" ")
                command = rest.split(" ", 1)[0].strip().upper()
                if command == "CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag.encode() + b" OK done\r\n")
                elif command == "LOGIN":
                    conn.sendall(tag.encode() + b" OK logged in\r\n")
                # Anything else (LIST, SELECT...) is never answered.
