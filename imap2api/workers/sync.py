"""The sync actors, how the API and the scheduler ask for a sync, and how a request waits for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import dramatiq

from imap2api import pubsub
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import run_db, session_scope
from imap2api.errors import NotFound
from imap2api.models import SyncRun
from imap2api.sync.engine import LeaseBusy, run_sync
from imap2api.sync.lease import ServerGone
from imap2api.workers import broker as _broker  # noqa: F401 - binds the actor to the configured broker
from imap2api.workers.lanes import REQUESTED_QUEUE, SCHEDULED_QUEUE

log = logging.getLogger("imap2api.workers")

LEASE_RETRY_DELAY_MS = 5_000
LEASE_RETRY_LIMIT_S = 6 * 3600
RECHECK_SECONDS = 5.0  # a waited sync re-reads its run this often, in case the end's announcement was lost


def _sync(actor: dramatiq.Actor, server_id: int, run_id: int | None, first_try: float | None) -> None:
    """Run a sync of ``server_id`` (the queued run ``run_id``, or a fresh scheduled one)."""
    try:
        if run_id is None:
            with session_scope() as session:
                server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
                run_id = crud_runs.start_run(session, server=server, trigger="schedule")[0].id
        run_sync(run_id or 0)
        # The run's events are committed: hand them to the webhook relay now, not at the next tick.
        # Its new emails are queued for the search index: build it now that the run is over.
        from imap2api.workers.search_index import index_search
        from imap2api.workers.webhooks import dispatch_events

        dispatch_events.send()
        index_search.send()
    except LeaseBusy:
        # Another worker is on this server; come back when it is likely done, within limits.
        first_try = first_try or time.time()
        if time.time() - first_try > LEASE_RETRY_LIMIT_S:
            with session_scope() as session:
                crud_runs.update_run(
                    session,
                    run_id=run_id or 0,
                    status="error",
                    error_code="LEASE_TIMEOUT",
                    error="another sync of this server never finished",
                )
            pubsub.publish(pubsub.run_channel(run_id or 0), {"status": "error"})
            return
        actor.send_with_options(args=(server_id, run_id, first_try), delay=LEASE_RETRY_DELAY_MS)
    except ServerGone as exc:
        # Deleted while the sync waited or ran: nothing is left to sync, to store or to retry.
        log.info("%s; the sync stopped", exc)
    except NotFound:
        log.info("server %s was deleted before its scheduled sync", server_id)


@dramatiq.actor(queue_name=REQUESTED_QUEUE, max_retries=0, time_limit=6 * 3600 * 1000)
def sync_server(server_id: int, run_id: int | None = None, first_try: float | None = None) -> None:
    """Run a sync someone asked for (API, GraphQL, admin), in the requested-syncs lane."""
    _sync(sync_server, server_id, run_id, first_try)


@dramatiq.actor(queue_name=SCHEDULED_QUEUE, max_retries=0, time_limit=6 * 3600 * 1000)
def sync_server_scheduled(server_id: int, run_id: int | None = None, first_try: float | None = None) -> None:
    """Run a sync the scheduler queued, in the scheduled-syncs lane."""
    _sync(sync_server_scheduled, server_id, run_id, first_try)


def request_sync(*, server_id: int, owner_id: int | None, trigger: str = "manual") -> SyncRun:
    """Queue a sync of a server, or join the one already queued or running.

    Scheduled syncs go to their own lane, so that a request never waits behind the scheduler's
    backlog (dead servers included). The message is sent after the run row commits, so the worker
    always finds it.
    """
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=owner_id, server_id=server_id)
        run, created = crud_runs.start_run(session, server=server, trigger=trigger)
        # Joining a scheduled run that still waits in its lane: queue it in the requested lane too
        # (once: the first joiner promotes it). Whichever message comes first runs it; the other
        # finds it done.
        promoted = (
            not created and trigger != "schedule" and crud_runs.promote_run(session, run_id=run.id or 0)
        )
    if created and trigger == "schedule":
        sync_server_scheduled.send(server_id, run.id)
    elif created or promoted:
        sync_server.send(server_id, run.id)
    return run


def _finished(message: dict[str, Any]) -> bool:
    """Whether a run-channel message announces the end (progress messages carry no status)."""
    status = message.get("status")
    return status is not None and status not in crud_runs.ACTIVE


@contextlib.asynccontextmanager
async def _listening(channel: str) -> AsyncIterator[asyncio.Queue | None]:
    """The channel's messages, or None when the bus cannot be reached (the wait then only re-reads)."""
    stack = contextlib.AsyncExitStack()
    try:
        queue: asyncio.Queue | None = await stack.enter_async_context(pubsub.bus().subscribe(channel))
    except Exception:  # noqa: BLE001 - e.g. Redis restarting: the re-reads alone still end the wait
        log.warning("could not subscribe to %s; waiting by re-reading the run", channel, exc_info=True)
        queue = None
    try:
        yield queue
    finally:
        try:
            await stack.aclose()
        except Exception:  # noqa: BLE001 - the wait's answer is known; a failed unsubscribe must not lose it
            log.warning("could not unsubscribe from %s", channel, exc_info=True)


async def _announced_end(queue: asyncio.Queue | None, seconds: float) -> None:
    """Return when ``queue`` brings the run's end, or after ``seconds``."""
    if queue is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while not _finished(await queue.get()):
                pass


async def wait_for_run(run_id: int, *, timeout: float, recheck: float = RECHECK_SECONDS) -> SyncRun:
    """Wait until a run finishes or ``timeout`` seconds pass, holding no thread; returns it either way.

    The engine announces the end on the run's channel; a re-read every ``recheck`` seconds catches
    an end whose announcement was lost (Redis restarting) or never sent (a run failed by the scheduler).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Subscribed before the first read: an end between the two is heard, not missed.
    async with _listening(pubsub.run_channel(run_id)) as queue:
        while True:
            run = await run_db(crud_runs.get_run, run_id=run_id)
            remaining = deadline - loop.time()
            if run.status not in crud_runs.ACTIVE or remaining <= 0:
                return run
            await _announced_end(queue, min(recheck, remaining))
