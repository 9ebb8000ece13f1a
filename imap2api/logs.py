"""Logging set-up: plain text by default, one JSON object per line when asked."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from imap2api.config import settings

# The default is never mutated: log_context sets a new dict each time.
_context: ContextVar[dict[str, Any]] = ContextVar("imap2api_log_context", default={})  # noqa: B039


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Attach values (a request id, a sync run id) to every log record made inside the block."""
    token = _context.set({**_context.get(), **values})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the context's values as record attributes."""
        for key, value in _context.get().items():
            setattr(record, key, value)
        return True


class RequestIdMiddleware:
    """ASGI middleware giving each request an id (X-Request-ID, kept if the client sent a sane one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Bind the id to the log context and echo it in the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if given and len(given) <= 64 and given.isprintable() else secrets.token_hex(8)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (with any ``extra`` context such as a sync run id)."""

    _standard = set(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        """Render the record."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Query parameters that carry something secret-ish: the OAuth2 callback's code and state.
_SECRET_QUERY = re.compile(r"([?&](?:code|state)=)[^&\s\"]*")


class SecretQueryFilter(logging.Filter):
    """Blanks the OAuth2 callback's ``code`` and ``state`` in access-log lines (uvicorn logs the query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the request line argument of a uvicorn access record."""
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def configure_logging() -> None:
    """Install one stderr handler in the configured format and level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(item, SecretQueryFilter) for item in access.filters):
        access.addFilter(SecretQueryFilter())
    # Alembic narrates every plugin it loads at INFO; only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
