"""Syncs: ask for one (or join the one under way), wait for it, read the runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlmodel import Session

from imap2api import pubsub
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud.common import Page
from imap2api.db import run_db
from imap2api.enums import SyncTrigger
from imap2api.models import ImapServer, SyncRun
from imap2api.services import jobs, servers
from imap2api.services.paging import page_number, page_size
from imap2api.services.principal import Principal

log = logging.getLogger("imap2api.sync")

RECHECK_SECONDS = 5.0  # a waited sync re-reads its run this often, in case the end's announcement was lost
MAX_RUNS = 100


def request(
    session: Session, actor: Principal, server_id: int, *, trigger: SyncTrigger = SyncTrigger.MANUAL
) -> SyncRun:
    """Queue a sync of a server, or join the one already queued or running.

    Scheduled syncs go to their own lane, so that a request never waits behind the scheduler's
    backlog (dead servers included). The job is sent after the run row commits, so the worker
    always finds it.
    """
    server = servers.get(session, actor, server_id)
    run, created = crud_runs.start_run(session, server=server, trigger=trigger)
    scheduled = trigger == SyncTrigger.SCHEDULE
    # Joining a scheduled run that still waits in its lane: queue it in the requested lane too
    # (once: the first joiner promotes it). Whichever message comes first runs it; the other
    # finds it done.
    promoted = not created and not scheduled and crud_runs.promote_run(session, run_id=run.id or 0)
    if created or promoted:
        jobs.enqueue(session, jobs.sync_job(server_id, run.id or 0, scheduled=created and scheduled))
    return run


def request_scheduled(session: Session, server_ids: Sequence[int]) -> list[int]:
    """Queue a scheduled sync of each server that has no active run, set-wise: one INSERT of their runs,
    and their jobs (in the scheduled lane, in the order given) once the session commits; returns the
    servers queued.

    The scheduler's path (system principal): a server with a run under way keeps it, as ``request``
    would join it, and a server deleted meanwhile is skipped.
    """
    queued = crud_runs.queue_runs(session, server_ids=server_ids, trigger=SyncTrigger.SCHEDULE)
    for server_id, run_id in queued:
        jobs.enqueue(session, jobs.sync_job(server_id, run_id, scheduled=True))
    return [server_id for server_id, _ in queued]


def start_here(session: Session, actor: Principal, server_id: int) -> tuple[ImapServer, SyncRun]:
    """A run for a sync this process runs itself, in the foreground (the CLI): no job is queued."""
    server = servers.get(session, actor, server_id)
    run, _ = crud_runs.start_run(session, server=server, trigger=SyncTrigger.CLI)
    return server, run


def get_run(session: Session, actor: Principal, run_id: int) -> SyncRun:
    """A run of one of the principal's servers."""
    return crud_runs.get_run(session, run_id=run_id, owner_id=actor.owner_scope)


def runs_of(session: Session, actor: Principal, server_id: int, *, limit: int) -> list[SyncRun]:
    """A server's newest runs (at most ``MAX_RUNS``), newest first."""
    servers.get(session, actor, server_id)
    return crud_runs.list_runs(session, server_id=server_id, limit=max(1, min(limit, MAX_RUNS)))


def history(
    session: Session, actor: Principal, server_id: int, *, number: int, size: int | None, last: bool = False
) -> Page[SyncRun]:
    """One page of a server's runs (those the history keeps), newest first."""
    servers.get(session, actor, server_id)
    return crud_runs.page_runs(
        session, server_id=server_id, page=page_number(number, last=last), page_size=page_size(size)
    )


def _finished(message: dict[str, Any]) -> bool:
    """Whether a run-channel message announces the end (progress messages carry no status)."""
    status = message.get("status")
    return status is not None and status not in crud_runs.ACTIVE


@contextlib.asynccontextmanager
async def _listening(channel: str) -> AsyncIterator[asyncio.Queue[pubsub.Message] | None]:
    """The channel's messages, or None when the bus cannot be reached (the wait then only re-reads)."""
    stack = contextlib.AsyncExitStack()
    try:
        queue: asyncio.Queue[pubsub.Message] | None = await stack.enter_async_context(
            pubsub.bus().subscribe(channel)
        )
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


async def _announced_end(queue: asyncio.Queue[pubsub.Message] | None, seconds: float) -> None:
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
