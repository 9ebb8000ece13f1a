"""Push syncs: the folders a watcher heard about (imap2api.watch), mirrored at once.

A push sync is the incremental part of a sync run without the run: it takes the server's sync
lease (so it never overlaps a run or another push sync of the server), mirrors the named folders
(new mail from the last UIDNEXT, flags through CHANGEDSINCE, expunges through VANISHED where the
server has QRESYNC; see imap2api.sync.folder), widens to every selected folder when a message
vanished (so a move keeps its id), and writes the same events a run would, but no sync run row
and no ``sync.completed``: those stay with the scheduled full syncs, which remain the safety net.
The server's ``last_sync`` and ``next_sync_at`` are left alone for the same reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.models import ImapServer
from imap2api.services import jobs
from imap2api.sync.engine import LeaseBusy, holder_name, mirror_server
from imap2api.sync.lease import LeaseLost, ServerGone, give_back_lease
from imap2api.sync.progress import RunState
from imap2api.sync.run_timeout import RunTimeout
from imap2api.webhooks import dispatch

log = logging.getLogger("imap2api.sync")


@dataclass(frozen=True)
class PushOutcome:
    """What a push sync did."""

    new: int = 0
    updated: int = 0
    deleted: int = 0
    events: int = 0
    seconds: float = 0.0
    skipped: bool = False  # the server is inactive or not fully synced yet: nothing was done


def push_sync(server_id: int, folders: frozenset[str] | None = None) -> PushOutcome:
    """Mirror ``folders`` of a server (None: every selected folder, and the folder list itself).

    Raises LeaseBusy when a run or another push sync holds the server (the caller tries again
    soon), ServerGone when the server was deleted, SyncFailed when the IMAP server cannot be used.
    """
    started = time.monotonic()
    holder = holder_name()
    with session_scope() as session:
        server = session.get(ImapServer, server_id)
        if server is None:
            raise ServerGone(f"server {server_id} was deleted")
        if not server.is_active or server.last_sync is None:
            return PushOutcome(skipped=True)
        if not crud_runs.acquire_lease(
            session, server_id=server_id, holder=holder, seconds=settings.sync_lease_seconds
        ):
            raise LeaseBusy(f"server {server_id} is being synced")
    state = runless_state(server, holder)
    try:
        with RunTimeout(settings.sync_run_timeout_seconds) as bound:
            mirror_server(server, state, bound, only=folders)
    except LeaseLost as exc:
        log.warning("push sync of server %s stopped: %s", server_id, exc)
        return _outcome(state, started)
    finally:
        give_back(server_id, holder)
    if state.events:
        relay_events()
    if state.new:
        jobs.send(jobs.index_job())
    return _outcome(state, started)


def relay_events() -> None:
    """Turn the committed events into webhook deliveries here and now, and queue those.

    Done in this thread rather than by a relay job: a job waits for a consumer's next poll of the
    broker (up to a second on Redis), and push (or a write the caller waits for) is about the second.
    """
    try:
        dispatch.relay_events(enqueue=lambda delivery_id: jobs.send(jobs.delivery_job(delivery_id)))
    except Exception:  # noqa: BLE001 - e.g. the database restarting: the scheduler's tick relays them
        log.warning("could not relay the events just written; the next scheduler tick will", exc_info=True)


def runless_state(server: ImapServer, holder: str) -> RunState:
    """The state of a sync without a run row (a push sync, a write's sync) of ``server`` by ``holder``."""
    return RunState(
        run_id=None,
        server_id=server.id or 0,
        owner_id=server.owner_id,
        holder=holder,
        limit_type=server.sync_limit_type,
        limit_value=server.sync_limit_value,
    )


def give_back(server_id: int, holder: str) -> None:
    """Release the sync lease if ``holder`` still holds it (it may have lapsed and passed on)."""
    try:
        with session_scope() as session:
            give_back_lease(session, server_id=server_id, holder=holder)
    except (LeaseLost, ServerGone):
        pass  # taken over after it lapsed, or deleted: nothing of ours to give back


def _outcome(state: RunState, started: float) -> PushOutcome:
    """The PushOutcome of a state."""
    return PushOutcome(
        new=state.new,
        updated=state.updated,
        deleted=state.deleted,
        events=state.events,
        seconds=time.monotonic() - started,
    )
