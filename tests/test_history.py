"""History pruning, on SQLite and PostgreSQL: finished events, deliveries and sync runs go once old;
anything still under way, recent, or a server's latest run stays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from imap2api.config import settings
from imap2api.crud import events as crud_events
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.models import Event, SyncRun, Webhook, WebhookDelivery, utcnow
from imap2api.workers.scheduler import prune_old_history


@pytest.fixture()
def owner(make_user) -> tuple[int, int]:  # noqa: ANN001
    """(user id, server id) of a fresh user with one IMAP server."""
    username, _, _ = make_user()
    with session_scope() as session:
        user = crud_users.get_user_by_username(session, username=username)
        server = crud_servers.create_server(
            session,
            owner_id=user.id,
            data={"name": "n", "host": "h", "port": 993, "username": "u", "password": "p"},
        )
        return user.id, server.id


def test_prune_history_removes_only_what_is_finished_and_old(owner: tuple[int, int], monkeypatch) -> None:  # noqa: ANN001
    user_id, server_id = owner
    old, recent = utcnow() - timedelta(days=40), utcnow() - timedelta(days=1)
    with session_scope() as session:
        hook = Webhook(owner_id=user_id, url="https://example.com/h", secret_encrypted="x")
        session.add(hook)
        session.flush()

        def event(created, *, dispatched: bool = True, statuses: tuple[str, ...] = ()) -> str:
            row = crud_events.record_event(
                session, owner_id=user_id, server_id=server_id, type="sync.completed", data={}
            )
            row.created_at, row.dispatched_at = created, created if dispatched else None
            session.flush()
            for attempt, status in enumerate(statuses, start=1):
                session.add(
                    WebhookDelivery(
                        webhook_id=hook.id,
                        event_id=row.id,
                        event_type=row.type,
                        attempt=attempt,
                        status=status,
                        created_at=created,
                    )
                )
            return row.id

        gone = event(old, statuses=("retrying", "success"))
        failed = event(old, statuses=("failed",))
        in_flight = event(old, statuses=("retrying", "pending"))
        undispatched = event(old, dispatched=False)
        young = event(recent, statuses=("success",))
        runs = {}
        for name, created, status in (
            ("old", old, "success"),
            ("old_error", old, "error"),
            ("latest_old", old, "success"),
            ("recent", recent, "success"),
        ):
            run = SyncRun(imap_server_id=server_id, status=status, created_at=created)
            session.add(run)
            session.flush()
            runs[name] = run.id
        # The server's newest run is old too: it is kept all the same.
        session.get(SyncRun, runs["recent"]).created_at = old
        session.get(SyncRun, runs["recent"]).status = "success"

    monkeypatch.setattr(settings, "history_retention_days", 0)
    assert prune_old_history() is None
    monkeypatch.setattr(settings, "history_retention_days", 30)
    pruned = prune_old_history()
    assert (pruned.events, pruned.deliveries, pruned.sync_runs) == (2, 3, 3)

    with session_scope() as session:
        kept_events = set(session.exec(select(Event.id).where(Event.owner_id == user_id)))
        kept_runs = set(session.exec(select(SyncRun.id).where(SyncRun.imap_server_id == server_id)))
        in_flight_attempts = list(
            session.exec(select(WebhookDelivery).where(WebhookDelivery.event_id == in_flight))
        )
    assert kept_events == {in_flight, undispatched, young}
    assert gone not in kept_events and failed not in kept_events
    assert kept_runs == {runs["recent"]}
    assert len(in_flight_attempts) == 2
