"""Sync runs and the per-server lease that keeps two workers from syncing one server at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, literal, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from imap2api.crud.common import Page, dialect_insert, paginate
from imap2api.enums import ACTIVE_SYNC_STATUSES, SyncStatus, SyncTrigger
from imap2api.errors import NotFound
from imap2api.models import ImapServer, SyncRun, utcnow

ACTIVE = ACTIVE_SYNC_STATUSES  # the name cli, services, sync and workers import
LOST = "the worker running this sync stopped before it finished"


def _active_run(session: Session, server_id: int) -> SyncRun | None:
    """The server's queued or running run, if any."""
    return session.exec(
        select(SyncRun)
        .where(SyncRun.imap_server_id == server_id, col(SyncRun.status).in_(ACTIVE))
        .order_by(col(SyncRun.id).desc())
    ).first()


def start_run(session: Session, *, server: ImapServer, trigger: SyncTrigger) -> tuple[SyncRun, bool]:
    """The server's active run, or a new queued one; the flag says whether it is new.

    Two API processes asking at the same instant both try the insert; the partial unique index
    on active runs (migration 0005) lets one win, and the other joins the winner's run. A running
    run whose lease has lapsed is failed instead of joined: its worker is gone, and nobody would
    finish it before the scheduler noticed.
    """
    active = _active_run(session, server.id or 0)
    if (
        active is not None
        and active.status == SyncStatus.RUNNING
        and _lease_lapsed_now(session, server.id or 0)
    ):
        fail_lost_runs(session, run_ids=[active.id or 0])
        active = None
    if active is not None:
        return active, False
    run = SyncRun(imap_server_id=server.id or 0, trigger=trigger)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        winner = _active_run(session, server.id or 0)
        if winner is None:
            raise
        return winner, False
    return run, True


def get_run(session: Session, *, run_id: int, owner_id: int | None = None) -> SyncRun:
    """A sync run, checked against its server's owner when ``owner_id`` is given."""
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound()
    if owner_id is not None:
        server = session.get(ImapServer, run.imap_server_id)
        if server is None or server.owner_id != owner_id:
            raise NotFound()
    return run


def list_runs(session: Session, *, server_id: int, limit: int = 50) -> list[SyncRun]:
    """The newest runs of a server."""
    statement = select(SyncRun).where(SyncRun.imap_server_id == server_id).order_by(col(SyncRun.id).desc())
    return list(session.exec(statement.limit(limit)))


def page_runs(session: Session, *, server_id: int, page: int, page_size: int) -> Page[SyncRun]:
    """One page of a server's runs, newest first."""
    statement = select(SyncRun).where(SyncRun.imap_server_id == server_id).order_by(col(SyncRun.id).desc())
    return paginate(session, statement, page=page, page_size=page_size)


def update_run(session: Session, *, run_id: int, **values: Any) -> None:
    """Write run columns (progress, status, counts...)."""
    session.exec(update(SyncRun).where(col(SyncRun.id) == run_id).values(**values))


def acquire_lease(session: Session, *, server_id: int, holder: str, seconds: int) -> bool:
    """Take the server's sync lease if it is free or expired; True when taken."""
    now = utcnow()
    result = session.exec(
        update(ImapServer)
        .where(
            col(ImapServer.id) == server_id,
            or_(
                col(ImapServer.lease_owner).is_(None),
                col(ImapServer.lease_owner) == holder,
                col(ImapServer.lease_expires_at) < now,
            ),
        )
        .values(lease_owner=holder, lease_expires_at=now + timedelta(seconds=seconds))
    )
    return result.rowcount == 1


def renew_lease(session: Session, *, server_id: int, holder: str, seconds: int) -> bool:
    """Push the lease's expiry forward while the holder works; False when it is not the holder's
    any more (taken over after it lapsed, or the server was deleted)."""
    result = session.exec(
        update(ImapServer)
        .where(col(ImapServer.id) == server_id, col(ImapServer.lease_owner) == holder)
        .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
    )
    return result.rowcount == 1


def release_lease(session: Session, *, server_id: int, holder: str) -> bool:
    """Give the lease back if it is still the holder's; True when it was."""
    result = session.exec(
        update(ImapServer)
        .where(col(ImapServer.id) == server_id, col(ImapServer.lease_owner) == holder)
        .values(lease_owner=None, lease_expires_at=None)
    )
    return result.rowcount == 1


def _lease_lapsed_now(session: Session, server_id: int) -> bool:
    """Whether the server's lease is free or expired, read after the run was: a worker takes the lease and
    marks its run running in one commit, so a ``server`` row read before the run may not show it yet."""
    expires = session.exec(select(ImapServer.lease_expires_at).where(ImapServer.id == server_id)).first()
    return expires is None or expires < utcnow()


def fail_lost_runs(session: Session, *, run_ids: Sequence[int]) -> None:
    """Mark running runs as failed with ``WORKER_LOST`` (one that finished meanwhile keeps its outcome)."""
    if run_ids:
        session.exec(
            update(SyncRun)
            .where(col(SyncRun.id).in_(run_ids), col(SyncRun.status) == SyncStatus.RUNNING)
            .values(status=SyncStatus.ERROR, error=LOST, error_code="WORKER_LOST", finished_at=utcnow())
        )


def fail_abandoned_runs(session: Session) -> int:
    """Mark as failed the runs left running by a worker that died (its lease has expired)."""
    now = utcnow()
    abandoned = session.exec(
        select(SyncRun.id)
        .join(ImapServer, col(ImapServer.id) == col(SyncRun.imap_server_id))
        .where(
            SyncRun.status == SyncStatus.RUNNING,
            or_(col(ImapServer.lease_expires_at).is_(None), col(ImapServer.lease_expires_at) < now),
        )
    ).all()
    fail_lost_runs(session, run_ids=[run_id for run_id in abandoned if run_id is not None])
    return len(abandoned)


def fail_runs_of_dead_holders(session: Session, *, is_dead: Callable[[str], bool]) -> int:
    """Fail the running runs whose lease holder ``is_dead`` says is gone, and free their leases at once
    instead of when they lapse; returns how many runs failed."""
    held = session.exec(
        select(ImapServer.id, ImapServer.lease_owner).where(col(ImapServer.lease_owner).is_not(None))
    ).all()
    failed = 0
    for server_id, holder in held:
        if holder is None or not is_dead(holder):
            continue
        running = session.exec(
            select(SyncRun.id).where(
                SyncRun.imap_server_id == server_id, SyncRun.status == SyncStatus.RUNNING
            )
        ).all()
        fail_lost_runs(session, run_ids=[run_id for run_id in running if run_id is not None])
        release_lease(session, server_id=server_id or 0, holder=holder)
        failed += len(running)
    return failed


def queued_runs(session: Session) -> list[SyncRun]:
    """Every queued run, oldest first."""
    return list(
        session.exec(select(SyncRun).where(SyncRun.status == SyncStatus.QUEUED).order_by(col(SyncRun.id)))
    )


def claim_due_servers(session: Session, *, default_interval: int, limit: int = 100) -> list[int]:
    """Servers due for a scheduled sync, each claimed by moving its next_sync_at forward.

    One UPDATE per distinct interval (usually one for the whole batch), and only of servers still
    due: a second scheduler claiming at the same moment waits for the first's row locks, then finds
    them not due any more (PostgreSQL re-checks the WHERE on the updated rows), so two never both win.
    """
    now = utcnow()
    still_due = or_(col(ImapServer.next_sync_at).is_(None), col(ImapServer.next_sync_at) <= now)
    due = session.exec(
        select(ImapServer.id, ImapServer.sync_interval_seconds)
        .where(
            ImapServer.is_active == True,  # noqa: E712
            # Its OAuth2 tokens were refused: a sync would fail at once until the owner connects it again.
            col(ImapServer.needs_reauth).is_(False),
            still_due,
        )
        .order_by(col(ImapServer.next_sync_at).is_not(None), col(ImapServer.next_sync_at), col(ImapServer.id))
        .limit(limit)
    ).all()
    by_interval: dict[int, list[int]] = {}
    for server_id, interval in due:
        by_interval.setdefault(interval or default_interval, []).append(server_id or 0)
    claimed: set[int] = set()
    for interval, server_ids in by_interval.items():
        result = session.execute(
            update(ImapServer)
            .where(col(ImapServer.id).in_(server_ids), still_due)
            .values(next_sync_at=now + timedelta(seconds=interval))
            .returning(col(ImapServer.id))
        )
        claimed.update(result.scalars())
    # In the order they fell due: the lanes take the runs in the order they are queued.
    return [server_id or 0 for server_id, _ in due if server_id in claimed]


def queue_runs(session: Session, *, server_ids: Sequence[int], trigger: SyncTrigger) -> list[tuple[int, int]]:
    """A new queued run for each of these servers that has no active one, in one INSERT; returns
    (server id, run id) pairs in the order of ``server_ids``.

    A server with a queued or running run keeps it: the partial unique index (migration 0005) turns
    its row into a no-op (ON CONFLICT DO NOTHING), also when another process queued it a moment ago.
    A server deleted meanwhile gets none (the INSERT selects from the servers that exist).
    """
    if not server_ids:
        return []
    table = SyncRun.__table__  # type: ignore[attr-defined]
    # Every column as a new run has it (the model's defaults), but the server, taken from the SELECT.
    fresh = SyncRun(imap_server_id=0, trigger=trigger).model_dump(exclude={"id", "imap_server_id"})
    values: dict[str, Any] = {"imap_server_id": col(ImapServer.id)}
    values.update({name: literal(value, table.c[name].type) for name, value in fresh.items()})
    rows = select(*values.values()).where(col(ImapServer.id).in_(list(server_ids)))
    statement = (
        dialect_insert(session, table)
        .from_select(list(values), rows)
        .on_conflict_do_nothing()
        .returning(table.c.imap_server_id, table.c.id)
    )
    queued = {server_id: run_id for server_id, run_id in session.execute(statement)}
    return [(server_id, queued[server_id]) for server_id in server_ids if server_id in queued]


def promote_run(session: Session, *, run_id: int) -> bool:
    """Mark a queued scheduled run as asked for (trigger manual); True for the one caller that did it."""
    result = session.exec(
        update(SyncRun)
        .where(
            col(SyncRun.id) == run_id,
            col(SyncRun.status) == SyncStatus.QUEUED,
            col(SyncRun.trigger) == SyncTrigger.SCHEDULE,
        )
        .values(trigger=SyncTrigger.MANUAL)
    )
    return result.rowcount == 1


def missing_folders_of(session: Session, server_ids: list[int]) -> dict[int, list[str]]:
    """The missing folders of each server's newest finished run, for the servers that have any."""
    newest = (
        select(col(SyncRun.imap_server_id), func.max(col(SyncRun.id)).label("run_id"))
        .where(col(SyncRun.imap_server_id).in_(server_ids))
        .where(col(SyncRun.status).not_in(list(ACTIVE)))
        .group_by(col(SyncRun.imap_server_id))
        .subquery()
    )
    rows = session.exec(
        select(col(SyncRun.imap_server_id), col(SyncRun.missing_folders))
        .join(newest, col(SyncRun.id) == newest.c.run_id)
        .where(col(SyncRun.missing_folders) != "")
    )
    return {server_id: names.split(",") for server_id, names in rows}
