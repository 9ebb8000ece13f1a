"""Watch leases: each active server is watched by one worker process, found through its row.

Every live process has a row in ``watchers``, and holds about its fair share of the servers.
A process claims servers nobody watches (or whose watcher's lease lapsed), renews its leases on
every tick, and gives them back when it stops; a process that dies simply stops renewing, and the
others claim its servers once the lease lapses. Only servers whose first full sync is done are
watched: push syncs are incremental by nature.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, and_, delete, func, not_, or_, update
from sqlmodel import Session, col, select

from imap2api.models import ImapServer, Watcher, utcnow


def _watchable() -> ColumnElement[bool]:
    """The condition of a server worth watching: active, its first full sync done, able to log in."""
    return and_(
        col(ImapServer.is_active).is_(True),
        col(ImapServer.last_sync).is_not(None),
        col(ImapServer.needs_reauth).is_(False),
    )


def claim(session: Session, *, holder: str, limit: int, seconds: int) -> list[int]:
    """Claim up to ``limit`` watchable servers nobody holds (or whose lease lapsed); their ids."""
    if limit <= 0:
        return []
    now = utcnow()
    free = or_(col(ImapServer.watch_owner).is_(None), col(ImapServer.watch_expires_at) < now)
    candidates = session.exec(
        select(ImapServer.id).where(_watchable(), free).order_by(col(ImapServer.id)).limit(limit)
    ).all()
    claimed = []
    for server_id in candidates:
        # Conditional on the lease still being free: of two processes claiming at once, one wins.
        result = session.exec(
            update(ImapServer)
            .where(col(ImapServer.id) == server_id, free)
            .values(watch_owner=holder, watch_expires_at=now + timedelta(seconds=seconds))
        )
        if result.rowcount == 1:
            claimed.append(server_id or 0)
    return claimed


def renew(session: Session, *, holder: str, seconds: int) -> list[int]:
    """Extend the holder's leases of watchable servers, give back the others; the ids it still holds."""
    now = utcnow()
    session.exec(
        update(ImapServer)
        .where(col(ImapServer.watch_owner) == holder, _watchable())
        .values(watch_expires_at=now + timedelta(seconds=seconds))
    )
    session.exec(
        update(ImapServer)
        .where(
            col(ImapServer.watch_owner) == holder,
            not_(_watchable()),
        )
        .values(watch_owner=None, watch_expires_at=None, watch_status="")
    )
    held = session.exec(select(ImapServer.id).where(col(ImapServer.watch_owner) == holder))
    return [server_id or 0 for server_id in held]


def release(session: Session, *, holder: str, server_ids: Sequence[int] | None = None) -> None:
    """Give back the holder's leases (all of them, or those of ``server_ids``)."""
    statement = update(ImapServer).where(col(ImapServer.watch_owner) == holder)
    if server_ids is not None:
        statement = statement.where(col(ImapServer.id).in_(list(server_ids)))
    session.exec(statement.values(watch_owner=None, watch_expires_at=None, watch_status=""))


def heartbeat(session: Session, *, holder: str, seconds: int) -> None:
    """Say the holder's process is alive for ``seconds`` more (and forget processes dead for a day)."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    # Only the holder writes its row, so a read then a write cannot race with another writer.
    if (
        session.exec(update(Watcher).where(col(Watcher.holder) == holder).values(expires_at=expires)).rowcount
        == 0
    ):
        session.add(Watcher(holder=holder, expires_at=expires))
    session.exec(delete(Watcher).where(col(Watcher.expires_at) < now - timedelta(days=1)))


def leave(session: Session, *, holder: str) -> None:
    """The holder's process stops watching: its leases and its row go."""
    release(session, holder=holder)
    session.exec(delete(Watcher).where(col(Watcher.holder) == holder))


def fair_share(session: Session) -> int:
    """How many servers each live watcher process should hold (rounded up; call after ``heartbeat``)."""
    watchable = session.exec(select(func.count()).select_from(ImapServer).where(_watchable())).one()
    processes = session.exec(
        select(func.count()).select_from(Watcher).where(col(Watcher.expires_at) >= utcnow())
    ).one()
    return -(-int(watchable) // max(1, int(processes)))


def set_status(session: Session, *, server_id: int, holder: str, status: str) -> None:
    """Record how the holder's watch of a server goes ("NOTIFY", "reconnecting in 8 s: ..."), if held."""
    session.exec(
        update(ImapServer)
        .where(and_(col(ImapServer.id) == server_id, col(ImapServer.watch_owner) == holder))
        .values(watch_status=status[:500])
    )
