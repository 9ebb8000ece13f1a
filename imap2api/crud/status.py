"""Operational read-outs: per-server sync state and counters for metrics and `imap2api status`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from imap2api.enums import SyncStatus
from imap2api.models import Email, ImapServer, SyncRun, User, WebhookDelivery


@dataclass(frozen=True)
class ServerStatus:
    """One server as an operator sees it."""

    id: int
    owner: str
    name: str
    host: str
    last_sync: datetime | None
    last_status: str
    last_error: str
    emails: int
    running: bool


def server_statuses(session: Session) -> list[ServerStatus]:
    """Every server with its last sync, email count and whether a sync is running."""
    counts = dict(
        session.exec(select(Email.imap_server_id, func.count()).group_by(col(Email.imap_server_id))).all()
    )
    running = set(session.exec(select(SyncRun.imap_server_id).where(SyncRun.status == SyncStatus.RUNNING)))
    rows = session.exec(
        select(ImapServer, User.username)
        .join(User, col(User.id) == col(ImapServer.owner_id))
        .order_by(col(ImapServer.id))
    )
    return [
        ServerStatus(
            id=server.id or 0,
            owner=username,
            name=server.name,
            host=f"{server.host}:{server.port}",
            last_sync=server.last_sync,
            last_status=server.last_sync_status,
            last_error=server.last_error,
            emails=counts.get(server.id or 0, 0),
            running=server.id in running,
        )
        for server, username in rows
    ]


def sync_run_totals(session: Session) -> dict[str, Any]:
    """Runs by status and messages fetched, over all runs."""
    by_status = dict(session.exec(select(SyncRun.status, func.count()).group_by(SyncRun.status)).all())
    fetched = session.exec(select(func.coalesce(func.sum(SyncRun.messages_new), 0))).one()
    return {"runs": by_status, "messages_fetched": int(fetched)}


def last_run_durations(session: Session) -> dict[int, float]:
    """Duration in seconds of each server's latest finished run."""
    latest = (
        select(func.max(SyncRun.id))
        .where(col(SyncRun.finished_at).is_not(None), col(SyncRun.started_at).is_not(None))
        .group_by(col(SyncRun.imap_server_id))
    )
    rows = session.exec(select(SyncRun).where(col(SyncRun.id).in_(latest)))
    return {
        run.imap_server_id: (run.finished_at - run.started_at).total_seconds()
        for run in rows
        if run.finished_at is not None and run.started_at is not None
    }


def delivery_totals(session: Session) -> dict[str, int]:
    """Webhook delivery attempts by status."""
    return dict(
        session.exec(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
    )


def database_answers(session: Session) -> bool:
    """Whether the database runs a trivial query."""
    return bool(session.exec(text("SELECT 1")).one()[0] == 1)  # type: ignore[call-overload]
