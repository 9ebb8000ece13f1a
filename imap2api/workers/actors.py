"""Every actor, declared on the configured broker."""

from __future__ import annotations

from imap2api.workers import broker as _broker  # noqa: F401 - must be imported before any actor
