"""A real webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that records every request.

It answers 200 unless told otherwise: ``fail_next(500, times=2)`` makes the next two requests
get 500 (then 200 again), ``fail_next(429, headers={"Retry-After": "1"})`` one 429. ``stop()``
closes the port (deliveries get connection errors) and ``start()`` opens the same port again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Receiver:
    """A recording HTTP server; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: deque[_Answer] = deque()
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Receiver:
        """Listen (again) on the receiver's port (a free one the first time)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                answer = receiver._next_answer()
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            "POST",
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.time(),
                            answer.status,
                        )
                    )
                    receiver._lock.notify_all()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL to register as a webhook."""
        return f"http://127.0.0.1:{self.port}/hook"

    def fail_next(
        self, status: int, *, times: int = 1, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again)."""
        with self._lock:
            for _ in range(times):
                self._answers.append(_Answer(status, headers or {}, body or f"status {status}".encode()))

    def _next_answer(self) -> _Answer:
        with self._lock:
            return self._answers.popleft() if self._answers else _Answer(200, {}, b"ok")

    # --- reading -------------------------------------------------------------------------------

    def of_type(self, event_type: str) -> list[Received]:
        """Requests whose JSON body has this ``type``."""
        with self._lock:
            return [r for r in self.requests if r.json.get("type") == event_type]

    def wait_for(self, predicate, *, timeout: float = 30.0) -> list[Received]:  # noqa: ANN001
        """Block until ``predicate(requests)`` is true; returns the requests (fails on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(list(self.requests)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"receiver: condition not met in {timeout}s; got "
                        f"{[(r.answered, r.body[:120]) for r in self.requests]}"
                    )
                self._lock.wait(remaining)
            return list(self.requests)
