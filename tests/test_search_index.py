"""The search index is built after the sync (migrations 0006 and 0017), on SQLite and PostgreSQL.

A sync queues its new emails (SQLite: ``emails_fts_pending``; PostgreSQL: ``search_indexed``
false, outside the partial trigram indexes); the indexer takes them in after the run. Searches are
exact at every moment, deletes and edits keep the index consistent whether an email was indexed yet
or not, and the indexer runs by itself after a worker's sync and from the scheduler.
"""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import select

from imap2api.crud import emails as crud_emails
from imap2api.crud import search_index
from imap2api.db import alembic_config, dispose_engines, in_session, session_scope
from imap2api.mail.search import parse_search
from imap2api.models import Email
from imap2api.services import sync
from imap2api.services.principal import Principal
from imap2api.workers.search_index import index_all_pending, search_index_tick
from tests.support.messages import make_message
from tests.support.webhook_checks import wait_until


def pending(database: str) -> int:
    """Emails waiting for the index."""
    with session_scope() as session:
        return search_index.pending_count(session)


def check_index(database: str) -> None:
    """FTS5's own integrity check of the index against the emails (SQLite; needs an empty queue)."""
    if database != "sqlite":
        return
    with session_scope() as session:
        session.execute(text("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 1)"))


def search(mirror, q: str) -> set[str]:  # noqa: ANN001
    """Subjects of the owner's emails matching ``q``."""
    filters = crud_emails.EmailFilters(owner_id=mirror.owner_id, search=parse_search(q))
    with session_scope() as session:
        page = crud_emails.list_emails(session, filters=filters, ordering=None, page=1, page_size=100)
        return {email.subject for email in page.items}


def test_a_sync_queues_its_mail_and_the_indexer_takes_it_in(database: str, mirror) -> None:  # noqa: ANN001
    for number in range(5):
        mirror.deliver(make_message(subject=f"Straßenbahn {number}", body=f"Fahrplan Nummer {number}"))
    mirror.deliver(make_message(subject="Sale: 50% off_today", body="x"))
    mirror.deliver(make_message(subject="Sale: 500 offXtoday", body="x"))
    assert mirror.sync().status == "success"
    # LIKE's wildcards in a term are literal characters, queued or indexed.
    assert search(mirror, "50% off_") == {"Sale: 50% off_today"}
    assert pending(database) >= 7
    assert search(mirror, "STRASSENBAHN") == set()  # the index folds case, not ß
    assert len(search(mirror, "straßenbahn")) == 5 and search(mirror, "nummer 3") == {"Straßenbahn 3"}
    seen: list[int] = []
    index_all_pending(on_progress=seen.append)
    assert pending(database) == 0 and seen
    check_index(database)
    assert len(search(mirror, "STRAßENBAHN")) == 5 and search(mirror, "nummer 3") == {"Straßenbahn 3"}
    assert search(mirror, "50% off_") == {"Sale: 50% off_today"}


def test_waiting_and_indexed_mail_is_found_alike_negated_or_not(database: str, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="Quarterly lighthouse review", body="the beacon is lit"))
    mirror.deliver(make_message(subject="Weekly standup", body="nothing to see"))
    assert mirror.sync().status == "success"
    assert pending(database) >= 2  # the sync itself indexes nothing, on either database

    def check(expected_standups: set[str]) -> None:
        everyone = {"Quarterly lighthouse review"} | expected_standups
        assert search(mirror, "LIGHTHOUSE") == {"Quarterly lighthouse review"}
        assert search(mirror, "beacon is") == {"Quarterly lighthouse review"}
        assert search(mirror, "-lighthouse") == expected_standups
        assert search(mirror, "subject:standup -beacon") == expected_standups
        assert search(mirror, "-subject:nomatch") == everyone
        assert search(mirror, "lighthouse -beacon") == set()

    check({"Weekly standup"})  # both waiting
    index_all_pending()
    assert pending(database) == 0
    check({"Weekly standup"})  # both indexed
    mirror.deliver(make_message(subject="Daily standup", body="still nothing"))
    with mirror.imap() as client:  # a flag change rewrites the row: it must stay indexed
        client.select_folder("INBOX")
        client.add_flags(client.search("ALL"), [b"\\Seen", b"\\Flagged"])
    assert mirror.sync().status == "success"
    assert pending(database) == 1  # the new email only
    check({"Weekly standup", "Daily standup"})  # one waiting, two indexed
    index_all_pending()
    check({"Weekly standup", "Daily standup"})
    check_index(database)


def test_a_page_of_a_common_term_walks_the_date_index_with_the_same_answer(
    database: str,
    mirror,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for number in range(4):
        mirror.deliver(make_message(subject=f"Common {number}", body="the budget meeting"))
    assert mirror.sync().status == "success"
    index_all_pending()
    for number in range(4, 7):  # these wait for the index
        mirror.deliver(make_message(subject=f"Common {number}", body="the budget meeting"))
    mirror.deliver(make_message(subject="Other", body="nothing"))
    assert mirror.sync().status == "success"

    def pages(q: str) -> list[list[str]]:
        filters = crud_emails.EmailFilters(owner_id=mirror.owner_id, search=parse_search(q))
        with session_scope() as session:
            return [
                [
                    email.subject
                    for email in crud_emails.list_emails(
                        session, filters=filters, ordering=ordering, page=number, page_size=3
                    ).items
                ]
                for ordering in (None, "date", "subject")
                for number in (1, 2, 3)
            ]

    queries = ("meeting", "budget meeting", "from:example meeting", "meeting -other")
    sorted_by_the_matches = {q: pages(q) for q in queries}
    monkeypatch.setattr(crud_emails, "_WALK_FROM", 0)  # every count is "common" now
    assert {q: pages(q) for q in queries} == sorted_by_the_matches
    assert sum(len(page) for page in sorted_by_the_matches["meeting"][:3]) == 7


def test_deletes_and_edits_keep_the_index_consistent_before_and_after_indexing(database: str, mirror) -> None:  # noqa: ANN001
    for name in ("alpha", "bravo", "charlie", "delta"):
        mirror.deliver(make_message(subject=f"{name} report", body=f"{name} body text"))
    assert mirror.sync().status == "success"
    index_all_pending()
    for name in ("echo", "foxtrot"):
        mirror.deliver(make_message(subject=f"{name} report", body=f"{name} body text"))
    assert mirror.sync().status == "success"  # echo and foxtrot wait for the index
    with session_scope() as session:
        rows = {
            email.subject.split()[0]: email
            for email in session.exec(select(Email).where(Email.imap_server_id == mirror.server_id))
        }
        session.delete(rows["alpha"])  # indexed
        session.delete(rows["echo"])  # queued
        rows["bravo"].subject = "renamed indexed"
        rows["foxtrot"].subject = "renamed queued"
        session.add_all([rows["bravo"], rows["foxtrot"]])
    assert search(mirror, "report") == {"charlie report", "delta report"}
    assert search(mirror, "renamed") == {"renamed indexed", "renamed queued"}
    index_all_pending()
    check_index(database)
    assert search(mirror, "report") == {"charlie report", "delta report"}
    assert search(mirror, "renamed") == {"renamed indexed", "renamed queued"}
    assert search(mirror, "alpha") == set() and search(mirror, "echo") == set()


def test_the_worker_indexes_after_a_sync_and_the_scheduler_catches_up(database: str, client, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="Worker indexed"))
    run = in_session(sync.request, Principal.system(), mirror.server_id)
    assert asyncio.run(sync.wait_for_run(run.id, timeout=60)).status == "success"
    wait_until(lambda: pending(database) == 0, what="the indexer after the sync")
    # A CLI or crashed sync leaves mail queued: the scheduler's tick sends the indexer.
    mirror.deliver(make_message(subject="Scheduler indexed"))
    assert mirror.sync().status == "success"
    search_index_tick()
    wait_until(lambda: pending(database) == 0, what="the indexer from the scheduler")
    check_index(database)
    assert search(mirror, "indexed") == {"Worker indexed", "Scheduler indexed"}


def _copy_email_in_sql(*, server_id: int, subject: str) -> None:
    """Insert a copy of the server's first email (new UID, Message-ID and subject) with plain SQL."""
    with session_scope() as session:
        columns = [
            name
            for name in session.execute(text("SELECT * FROM emails LIMIT 0")).keys()  # noqa: SIM118 - a Result, not a dict
            if name != "id"
        ]
        chosen = {"subject": ":subject", "uid": "uid + 100000", "message_id": "'<copy@example.com>'"}
        names = ", ".join(f'"{name}"' for name in columns)
        values = ", ".join(chosen.get(name, f'"{name}"') for name in columns)
        session.execute(
            text(
                f"INSERT INTO emails ({names}) SELECT {values} FROM emails "
                "WHERE imap_server_id = :server ORDER BY id LIMIT 1"
            ),
            {"subject": subject, "server": server_id},
        )


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_downgrading_indexes_the_queue_and_restores_inline_indexing(database: str, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="Before downgrade"))
    assert mirror.sync().status == "success"
    assert pending(database) >= 1
    dispose_engines()
    command.downgrade(alembic_config(), "0005")
    check_index(database)
    # The models are of the newest schema, so the engine cannot sync at 0005: store an email as a
    # sync of that version would, in SQL, and check the inline index took it in.
    _copy_email_in_sql(server_id=mirror.server_id, subject="While downgraded")
    check_index(database)
    command.upgrade(alembic_config(), "head")
    assert pending(database) == 0
    assert search(mirror, "downgrade") == {"Before downgrade", "While downgraded"}
