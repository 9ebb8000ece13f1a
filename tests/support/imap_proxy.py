"""A loopback IMAP relay for tests and benchmarks: records every command, can rewrite server lines.

It sits between imap2api and a real server (plain TCP, so use ``tls_mode="none"``), and sees the
real bytes: a test can make a Dovecot look like a server that never sends ``[UIDNEXT n]`` or has
no hierarchy delimiter, and count which commands a sync sent and how long each took to answer.
Literals (message bodies, long arguments) are relayed untouched in both directions.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")

Rewrite = Callable[[bytes], bytes | None]


def without_capabilities(*names: bytes) -> Rewrite:
    """A rewrite that drops ``names`` from every CAPABILITY list, as a server without them sends it."""

    def rewrite(line: bytes) -> bytes:
        if b"CAPABILITY " not in line.upper():
            return line
        words = line.rstrip(b"\r\n").split(b" ")
        return b" ".join(word for word in words if word.upper().rstrip(b"]") not in names) + b"\r\n"

    return rewrite


@dataclass
class Command:
    """One command a client sent: its text without the tag, and seconds until its tagged answer."""

    tag: bytes
    text: bytes
    sent_at: float
    seconds: float | None = None


class ImapProxy:
    """Relays connections on a free loopback port to ``upstream``; ``rewrite`` edits or drops server lines.

    ``rewrite`` gets each server line (CRLF included; never literal data, nor a line announcing one)
    and returns the line to send on, or None to drop it.
    """

    host = "127.0.0.1"

    def __init__(self, upstream_host: str, upstream_port: int, rewrite: Rewrite | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rewrite = rewrite
        self.commands: list[Command] = []
        self.server_bytes = 0  # everything the server sent, literals included
        self._pending: dict[bytes, Command] = {}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self.port = 0

    def start(self) -> ImapProxy:
        """Listen and relay in background threads."""
        self._listener = socket.create_server((self.host, 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="imap-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and every relayed connection."""
        sockets = [self._listener, *self._sockets] if self._listener else list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._listener = None

    def __enter__(self) -> ImapProxy:
        """Start relaying."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop relaying."""
        self.stop()

    def clear(self) -> None:
        """Forget the commands recorded so far."""
        with self._lock:
            self.commands.clear()

    def texts(self) -> list[str]:
        """The recorded commands as text, without tags (``UID FETCH 1:* (FLAGS)``...)."""
        with self._lock:
            return [command.text.decode(errors="replace") for command in self.commands]

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                # Relaying a response in pieces must not wait for ACKs (Nagle): that adds 40 ms stalls.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            threading.Thread(
                target=self._pump, args=(client, server, self._client_line, False), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, self._server_line, True), daemon=True
            ).start()

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        on_line: Callable[[bytes], bytes | None],
        from_server: bool,
    ) -> None:
        reader: BinaryIO = source.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    break
                size = len(line)
                out = on_line(line)
                if out:
                    target.sendall(out)
                # Whatever the line announces as a literal follows verbatim; the command goes on after it.
                match = _LITERAL.search(line)
                while match:
                    literal = reader.read(int(match.group(1)))
                    rest = reader.readline()
                    target.sendall(literal + rest)
                    size += len(literal) + len(rest)
                    match = _LITERAL.search(rest)
                if from_server:
                    self.server_bytes += size
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _client_line(self, line: bytes) -> bytes:
        tag, _, text = line.rstrip(b"\r\n").partition(b" ")
        command = Command(tag=tag, text=text, sent_at=time.perf_counter())
        with self._lock:
            self.commands.append(command)
            self._pending[tag] = command
        return line

    def _server_line(self, line: bytes) -> bytes | None:
        if not line.startswith((b"* ", b"+")):
            tag = line.split(b" ", 1)[0]
            with self._lock:
                command = self._pending.pop(tag, None)
            if command is not None:
                command.seconds = time.perf_counter() - command.sent_at
        if self.rewrite is None or _LITERAL.search(line):
            return line  # a line announcing a literal is never rewritten: its byte count must stay right
        return self.rewrite(line)
