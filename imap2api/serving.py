"""Running the API server so that a stop signal stops it within seconds, even mid-request.

uvicorn alone waits for every open request before it stops, and a request whose work sits in
a thread (a long query) can take indefinitely. Here in-flight requests get
``IMAP2API_SHUTDOWN_TIMEOUT_SECONDS`` and are then cancelled; the lifespan gives running jobs of
the embedded worker as long again. A watchdog armed by the signal ends the process if even that
does not finish (a thread that never returns, an event loop kept busy), as a supervisor's
SIGKILL would: the database rolls back whatever was not committed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from types import FrameType
from typing import Any

import uvicorn

from imap2api.config import settings

log = logging.getLogger("imap2api")

_watchdog_lock = threading.Lock()
_watchdog: threading.Thread | None = None


def _expire(seconds: float) -> None:
    """Exit the process ``seconds`` from now, if it is still there."""
    time.sleep(seconds)
    log.error("shutdown did not finish within %g seconds: exiting now", seconds)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(1)


def arm_watchdog(seconds: float) -> None:
    """Make sure the process ends within ``seconds`` (armed once; later calls change nothing)."""
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None:
            _watchdog = threading.Thread(
                target=_expire, args=(seconds,), name="imap2api-shutdown-watchdog", daemon=True
            )
            _watchdog.start()


def watchdog_seconds() -> float:
    """How long a shutdown may take: requests' grace, the worker's as long, and a margin."""
    return 2 * settings.shutdown_timeout_seconds + 5


class Server(uvicorn.Server):
    """uvicorn's server; its first stop signal also arms the shutdown watchdog."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begin uvicorn's graceful shutdown, bounded by the watchdog."""
        super().handle_exit(sig, frame)
        arm_watchdog(watchdog_seconds())


def run_server(app: Any, *, host: str, port: int) -> None:
    """Serve ``app`` until a stop signal, cancelling requests still running after the shutdown timeout."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        # X-Forwarded-For is believed only from the proxies named (none by default): the client
        # address is what the rate limits count, so a forged header must not buy a fresh budget.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or [],
        ws_max_size=settings.max_request_bytes,  # a websocket message is bounded like a request body
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_seconds)),
    )
    Server(config).run()
