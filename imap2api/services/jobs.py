"""Jobs for the workers, queued in a transaction and sent only once it has committed.

A job names its Dramatiq actor and queue instead of importing the actor, so that queueing one never
declares actors (the workers do: ``imap2api.workers.actors``), and the broker is built on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from dramatiq import Message
from sqlmodel import Session

from imap2api.db import after_commit

# Queues (each sync queue is a lane of its own: imap2api.workers.lanes) and the actors they feed.
REQUESTED_SYNCS = "sync"
SCHEDULED_SYNCS = "sync_scheduled"
WEBHOOKS = "webhooks"
SEARCH = "search"
SENDING = "send"
SYNC_ACTOR = "sync_server"
SCHEDULED_SYNC_ACTOR = "sync_server_scheduled"
DELIVERY_ACTOR = "deliver_webhook"
DISPATCH_ACTOR = "dispatch_events"
INDEX_ACTOR = "index_search"
SEND_ACTOR = "send_email"
REFRESH_ACTOR = "refresh_oauth2_token"  # on SENDING: short requests to a provider, like SMTP's


@dataclass(frozen=True)
class Job:
    """One message for one actor."""

    actor: str
    queue: str
    args: tuple[Any, ...] = ()
    delay_ms: int | None = None


def sync_job(
    server_id: int,
    run_id: int | None,
    *,
    scheduled: bool,
    first_try: float | None = None,
    delay_ms: int | None = None,
) -> Job:
    """Run the queued sync run ``run_id`` (None: a new scheduled one), in the scheduled or the
    requested lane; ``first_try`` is when a sync waiting for another one's lease first tried."""
    args = (server_id, run_id) if first_try is None else (server_id, run_id, first_try)
    if scheduled:
        return Job(SCHEDULED_SYNC_ACTOR, SCHEDULED_SYNCS, args, delay_ms)
    return Job(SYNC_ACTOR, REQUESTED_SYNCS, args, delay_ms)


def delivery_job(delivery_id: int, *, delay_ms: int | None = None) -> Job:
    """Make one attempt of a pending webhook delivery."""
    return Job(DELIVERY_ACTOR, WEBHOOKS, (delivery_id,), delay_ms)


def dispatch_job() -> Job:
    """Relay undispatched outbox events to the subscribed webhooks."""
    return Job(DISPATCH_ACTOR, WEBHOOKS)


def index_job() -> Job:
    """Move the emails queued for search into the search index."""
    return Job(INDEX_ACTOR, SEARCH)


def send_job(outbox_id: int, *, delay_ms: int | None = None) -> Job:
    """Do the due step of one outbox message: send it, or file its copy in Sent."""
    return Job(SEND_ACTOR, SENDING, (outbox_id,), delay_ms)


def refresh_job(server_id: int, refreshed_before: str) -> Job:
    """Refresh an idle server's OAuth2 token unless it was refreshed since ``refreshed_before`` (ISO)."""
    return Job(REFRESH_ACTOR, SENDING, (server_id, refreshed_before))


def enqueue(session: Session, job: Job) -> None:
    """Send ``job`` once ``session`` has committed (never if it rolls back)."""
    after_commit(session, functools.partial(send, job))


def send(job: Job) -> None:
    """Send ``job`` now, to the configured broker."""
    from imap2api.workers.broker import get_broker

    broker = get_broker()
    message: Message[Any] = Message(
        queue_name=job.queue, actor_name=job.actor, args=job.args, kwargs={}, options={}
    )
    # Declared here too: a process that queues without consuming (the API) need not import the actors.
    broker.declare_queue(job.queue)
    broker.enqueue(message, delay=job.delay_ms)
