"""The Dramatiq broker: Redis when ``IMAP2API_REDIS_URL`` is set, an in-process stub otherwise.

Built on first use by ``get_broker`` (never at import), or installed by ``use_broker`` (tests give
each test a fresh stub broker). Actors are declared on it by ``imap2api.workers.actors``.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from imap2api.config import Settings, settings
from imap2api.workers.wakeable import WakeableQueue


def _middleware() -> list[Middleware]:
    """The middleware both brokers use; retries are the actors' own business, so few here."""
    return [
        AgeLimit(),
        TimeLimit(time_limit=60 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=3, min_backoff=1000, max_backoff=60_000),
    ]


def make_broker(config: Settings) -> dramatiq.Broker:
    """Build the broker ``config`` calls for."""
    if config.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        # Dramatiq's RedisBroker.__init__ has no annotations.
        return RedisBroker(  # type: ignore[no-untyped-call]
            url=config.redis_url, middleware=_middleware(), namespace=config.redis_prefix
        )
    broker = EmbeddedBroker(middleware=_middleware())
    broker.emit_after("process_boot")
    return broker


class EmbeddedBroker(StubBroker):
    """Dramatiq's in-process broker, with queues whose idle consumers a stop can wake
    (``imap2api.workers.wakeable``)."""

    def declare_queue(self, queue_name: str) -> None:
        """Declare the queue and its delay queue, as wakeable queues."""
        if queue_name in self.queues:
            return
        super().declare_queue(queue_name)
        # Just made, so still empty: nothing can have been put in them yet.
        for name in (queue_name, dq_name(queue_name)):
            self.queues[name] = WakeableQueue()


_current: dramatiq.Broker | None = None


def get_broker() -> dramatiq.Broker:
    """The broker of this process: the installed one, else one built from the settings now."""
    return _current if _current is not None else use_broker(make_broker(settings))


def use_broker(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Install ``broker`` as this process's broker (Dramatiq's global one too) and return it."""
    global _current
    _current = broker
    dramatiq.set_broker(broker)
    return broker
