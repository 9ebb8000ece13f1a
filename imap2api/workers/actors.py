"""Every actor, as (function, name, queue, options); ``declare_actors`` binds them to a broker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dramatiq

from imap2api.services import jobs
from imap2api.workers import oauth2, search_index, sending, sync, webhooks

MINUTE_MS = 60 * 1000
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True)
class ActorSpec:
    """One actor: its function, the name and queue jobs address, its retries and time limit."""

    fn: Callable[..., None]
    name: str
    queue: str
    time_limit_ms: int
    max_retries: int = 0  # most actors' state lives in rows, and the scheduler re-sends lost work


ACTORS = (
    ActorSpec(sync.sync_server, jobs.SYNC_ACTOR, jobs.REQUESTED_SYNCS, 6 * HOUR_MS),
    ActorSpec(sync.sync_server_scheduled, jobs.SCHEDULED_SYNC_ACTOR, jobs.SCHEDULED_SYNCS, 6 * HOUR_MS),
    ActorSpec(webhooks.deliver_webhook, jobs.DELIVERY_ACTOR, jobs.WEBHOOKS, 10 * MINUTE_MS),
    ActorSpec(webhooks.dispatch_events, jobs.DISPATCH_ACTOR, jobs.WEBHOOKS, 10 * MINUTE_MS),
    # SMTP waits up to SMTP_DEADLINE_SECONDS, filing the copy up to a sync's bound.
    ActorSpec(sending.send_email, jobs.SEND_ACTOR, jobs.SENDING, 2 * HOUR_MS),
    ActorSpec(oauth2.refresh_oauth2_token, jobs.REFRESH_ACTOR, jobs.SENDING, 10 * MINUTE_MS),
    ActorSpec(search_index.index_search, jobs.INDEX_ACTOR, jobs.SEARCH, 6 * HOUR_MS, max_retries=3),
)


def declare_actors(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Declare every actor (and so its queue) on ``broker``, once; returns the broker."""
    for spec in ACTORS:
        if spec.name not in broker.actors:
            dramatiq.Actor(
                spec.fn,
                broker=broker,
                actor_name=spec.name,
                queue_name=spec.queue,
                priority=0,
                options={"max_retries": spec.max_retries, "time_limit": spec.time_limit_ms},
            )
    return broker
