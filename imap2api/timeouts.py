"""Time bounds: an HTTP request starts its answer within ``IMAP2API_REQUEST_TIMEOUT_SECONDS``, or gets a 503.

The bound runs until the response starts, so an answer under way (a subscription streamed over
HTTP) is not cut. Work already handed to a thread (a database query) cannot be interrupted: it
finishes in the background and its result is dropped; the client has its 503 at once. A waited
sync pushes its request's deadline back (``extend_deadline``): waiting for the sync is its job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any, TypeVar

from imap2api.config import settings

log = logging.getLogger("imap2api")

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTimedOut(Exception):
    """Raised when a request or operation passes its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} seconds")
        self.seconds = seconds


class Deadline:
    """When the work of one request must be done; it can be pushed back, or lifted."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = asyncio.get_running_loop().time() + seconds

    def extend(self, seconds: float) -> None:
        """Allow at least ``seconds`` from now."""
        self.expires = max(self.expires, asyncio.get_running_loop().time() + seconds)

    def lift(self) -> None:
        """No deadline any more (the answer has started)."""
        self.expires = float("inf")

    async def run(self, coroutine: Awaitable[T]) -> T:
        """Run ``coroutine`` as a task under this deadline; past it, cancel it and raise ``RequestTimedOut``.

        The cancelled task is not waited for: a thread it waits on may take long to finish.
        """
        token = _current.set(self)
        try:
            task = asyncio.ensure_future(coroutine)  # the task copies the context, this deadline in it
        finally:
            _current.reset(token)
        loop = asyncio.get_running_loop()
        try:
            while not task.done():
                remaining = self.expires - loop.time()
                if remaining <= 0:
                    task.cancel()
                    task.add_done_callback(_forget)
                    raise RequestTimedOut(self.seconds)
                await asyncio.wait({task}, timeout=None if remaining == float("inf") else remaining)
        except asyncio.CancelledError:
            task.cancel()
            raise
        return task.result()


_current: ContextVar[Deadline | None] = ContextVar("imap2api_deadline", default=None)


def _forget(task: asyncio.Future[Any]) -> None:
    """Collect the outcome of an abandoned task, so that its failure is logged once, not lost."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("a timed-out request failed afterwards", exc_info=task.exception())


def extend_deadline(seconds: float) -> None:
    """Give the running request at least ``seconds`` more from now (nothing outside a bounded request)."""
    deadline = _current.get()
    if deadline is not None:
        deadline.extend(seconds)


async def run_within(coroutine: Awaitable[T], seconds: float) -> T:
    """Run ``coroutine`` under a fresh deadline of ``seconds``; raises ``RequestTimedOut`` past it."""
    return await Deadline(seconds).run(coroutine)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Send a complete JSON response."""
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RequestTimeoutMiddleware:
    """ASGI middleware answering 503 to an HTTP request that has not started its answer in time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under its deadline."""
        seconds = settings.request_timeout_seconds
        if scope["type"] != "http" or seconds <= 0:
            await self.app(scope, receive, send)
            return
        deadline = Deadline(seconds)
        abandoned = False

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            if abandoned:
                return  # the client has had its 503: late output of this request goes nowhere
            if message["type"] == "http.response.start":
                deadline.lift()
            await send(message)

        try:
            await deadline.run(self.app(scope, receive, guarded_send))
        except RequestTimedOut:
            abandoned = True
            log.warning("%s %s: no answer within %g seconds", scope.get("method"), scope["path"], seconds)
            detail = f"Request timed out: no answer within {seconds:g} seconds."
            await _send_json(send, 503, {"detail": detail})
