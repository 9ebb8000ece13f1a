"""The Dramatiq broker: Redis when ``IMAP2API_REDIS_URL`` is set, an in-process stub otherwise."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from imap2api.config import settings


def _middleware() -> list:
    """The middleware both brokers use; retries are the actors' own business, so few here."""
    return [
        AgeLimit(),
        TimeLimit(time_limit=60 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=3, min_backoff=1000, max_backoff=60_000),
    ]


def make_broker() -> dramatiq.Broker:
    """Build the broker the current settings call for."""
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=settings.redis_url, middleware=_middleware(), namespace=settings.redis_prefix)
    broker = StubBroker(middleware=_middleware())
    broker.emit_after("process_boot")
    return broker


broker = make_broker()
dramatiq.set_broker(broker)
