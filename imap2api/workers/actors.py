"""Every actor, declared on the configured broker (import this module to register them)."""

from __future__ import annotations

from imap2api.workers import broker as _broker  # noqa: F401 - must be imported before any actor
from imap2api.workers.search_index import index_search  # noqa: F401
from imap2api.workers.sync import sync_server  # noqa: F401
from imap2api.workers.webhooks import deliver_webhook, dispatch_events  # noqa: F401
