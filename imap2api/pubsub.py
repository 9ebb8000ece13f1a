"""Live notifications for GraphQL subscriptions: in-process in embedded mode, Redis pub/sub otherwise.

Publishing is synchronous and safe from any thread (the sync engine runs in worker threads or
other processes); subscribing is an async iterator for the API's event loop. Notifications are
hints sent after a commit; subscribers read the committed rows themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from imap2api.config import settings

log = logging.getLogger("imap2api.pubsub")

# A notification as published: a JSON object.
Message = dict[str, Any]


def redis_channel(channel: str) -> str:
    """The Redis channel of a bus channel: under IMAP2API_REDIS_PREFIX, as every key of ours is."""
    return f"{settings.redis_prefix}:{channel}"


class LocalBus:
    """Fan-out to subscribers of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message]]]] = {}

    def publish(self, channel: str, message: Message) -> None:
        """Deliver to every current subscriber of ``channel``."""
        with self._lock:
            targets = list(self._subscribers.get(channel, ()))
        for loop, queue in targets:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, message)

    def subscriber_count(self, channel: str) -> int:
        """How many subscriptions ``channel`` has in this process."""
        with self._lock:
            return len(self._subscribers.get(channel, ()))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[Message]]:
        """A queue receiving the channel's messages while the context is open."""
        entry: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Message]] = (
            asyncio.get_running_loop(),
            asyncio.Queue(maxsize=1000),
        )
        with self._lock:
            self._subscribers.setdefault(channel, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._subscribers.get(channel, set()).discard(entry)


class RedisBus:
    """Redis pub/sub, so a subscriber on one API process hears a worker on another host."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._client = redis.Redis.from_url(url)

    def publish(self, channel: str, message: Message) -> None:
        """Publish; a Redis outage loses the hint, never the data (it is committed already)."""
        try:
            self._client.publish(redis_channel(channel), json.dumps(message, default=str))
        except Exception:  # noqa: BLE001
            log.warning("could not publish to Redis channel %s", channel, exc_info=True)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[Message]]:
        """A queue fed by a Redis subscription while the context is open."""
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(self.url)
        pubsub = client.pubsub()
        await pubsub.subscribe(redis_channel(channel))
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1000)

        async def pump() -> None:
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    await queue.put(json.loads(item["data"]))

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            await pubsub.unsubscribe()
            # redis-py leaves PubSub.aclose unannotated.
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()


_bus: LocalBus | RedisBus | None = None


def bus() -> LocalBus | RedisBus:
    """The process's bus, chosen by the settings."""
    global _bus
    if _bus is None:
        _bus = RedisBus(settings.redis_url) if settings.redis_url else LocalBus()
    return _bus


def publish(channel: str, message: Message) -> None:
    """Publish on the configured bus."""
    bus().publish(channel, message)


def email_channel(server_id: int) -> str:
    """Where new mail of a server is announced."""
    return f"email.received:{server_id}"


def run_channel(run_id: int) -> str:
    """Where a sync run's progress is announced."""
    return f"sync.progress:{run_id}"


def events_channel(owner_id: int) -> str:
    """Where the ids of a user's newly committed outbox events are announced."""
    return f"events:{owner_id}"
