"""Every actor, declared on the configured broker (import this module to register them)."""

from __future__ import annotations

from imap2api.workers import broker as _broker  # noqa: F401 - must be imported before any actor
from imap2api.workers.sync import sync_server  # noqa: F401
