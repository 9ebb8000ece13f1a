"""The counts the database keeps (migration 0019) stay exact through every kind of write, and the
statistics and list counts read from them equal a count of the emails."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import select

from imap2api.crud import emails as crud_emails
from imap2api.crud import mirror as crud_mirror
from imap2api.crud import servers as crud_servers
from imap2api.db import session_scope
from imap2api.models import Email
from tests.support.counts import count_mismatches
from tests.support.messages import make_message


def scanned_statistics(owner_id: int) -> dict:
    """The statistics as a count of the owner's emails would give them."""
    with session_scope() as session:
        rows = session.execute(
            text("SELECT folder, count(*) FROM emails WHERE owner_id = :o GROUP BY folder"), {"o": owner_id}
        ).all()
        threads = session.execute(
            text("SELECT count(DISTINCT thread_id) FROM emails WHERE owner_id = :o"), {"o": owner_id}
        ).scalar_one()
    folders = {name: count for name, count in rows}
    return {"total_emails": sum(folders.values()), "total_threads": threads, "folders": folders}


def kept_statistics(owner_id: int, server_id: int | None = None) -> dict:
    """The statistics the API serves."""
    with session_scope() as session:
        return crud_emails.statistics(session, owner_id=owner_id, server_id=server_id)


def test_counts_follow_syncs_merges_moves_and_expunges(mirror) -> None:
    # A reply before its parent: two threads, merged into one when the parent arrives.
    mirror.deliver(
        make_message(subject="reply", message_id="<r@x>", in_reply_to="<p@x>", references=["<p@x>"])
    )
    mirror.deliver(make_message(subject="alone", message_id="<a@x>"))
    mirror.deliver(make_message(subject="later", message_id="<l@x>", in_reply_to="<q@x>"))
    assert mirror.sync().status == "success"
    assert kept_statistics(mirror.owner_id)["total_threads"] == 3
    mirror.deliver(make_message(subject="bridge", message_id="<q@x>", references=["<p@x>", "<r@x>"]))
    assert mirror.sync().status == "success"
    assert count_mismatches() == {}
    assert kept_statistics(mirror.owner_id) == scanned_statistics(mirror.owner_id)
    assert kept_statistics(mirror.owner_id)["total_threads"] == 2

    with mirror.imap() as imap:
        imap.create_folder("Kept")
        imap.select_folder("INBOX")
        uids = imap.search(["SUBJECT", "alone"]) + imap.search(["SUBJECT", "later"])
        imap.move(uids[:1], "Kept")
        imap.delete_messages(uids[1:])
        imap.expunge()
    assert mirror.sync().status == "success"
    assert count_mismatches() == {}
    kept = kept_statistics(mirror.owner_id)
    assert kept == scanned_statistics(mirror.owner_id)
    assert kept["folders"] == {"INBOX": 2, "Kept": 1} and kept["total_threads"] == 2
    assert kept_statistics(mirror.owner_id, server_id=mirror.server_id) == kept


def test_counts_follow_statements_of_many_rows(mirror) -> None:
    """Bulk statements: one UPDATE merging every thread, one moving every email, one DELETE of a folder."""
    for number in range(6):
        mirror.deliver(make_message(subject=f"m{number}"), folder="INBOX" if number < 4 else "Sent")
    assert mirror.sync().status == "success"
    assert kept_statistics(mirror.owner_id)["total_threads"] == 6
    with session_scope() as session:
        (inbox,) = session.execute(
            text("SELECT id FROM folders WHERE imap_server_id = :s AND name = 'INBOX'"),
            {"s": mirror.server_id},
        ).one()
        session.execute(
            text("UPDATE emails SET thread_id = 'thr_one' WHERE imap_server_id = :s"), {"s": mirror.server_id}
        )
    assert count_mismatches() == {} and kept_statistics(mirror.owner_id)["total_threads"] == 1
    with session_scope() as session:
        session.execute(
            text("UPDATE emails SET folder_id = :f, folder = 'INBOX' WHERE imap_server_id = :s"),
            {"f": inbox, "s": mirror.server_id},
        )
    assert count_mismatches() == {} and kept_statistics(mirror.owner_id)["folders"] == {"INBOX": 6}
    with session_scope() as session:
        # Half the thread leaves it: the thread stays, with what is left.
        session.execute(
            text(
                "UPDATE emails SET thread_id = 'thr_two' WHERE id IN "
                "(SELECT id FROM emails WHERE imap_server_id = :s ORDER BY id LIMIT 3)"
            ),
            {"s": mirror.server_id},
        )
    assert count_mismatches() == {} and kept_statistics(mirror.owner_id)["total_threads"] == 2
    with session_scope() as session:
        session.execute(text("DELETE FROM emails WHERE folder_id = :f"), {"f": inbox})
    assert count_mismatches() == {}
    assert kept_statistics(mirror.owner_id) == {"total_emails": 0, "total_threads": 0, "folders": {}}


def test_counts_go_with_a_deleted_server(mirror) -> None:
    mirror.deliver(make_message(subject="one"))
    mirror.deliver(make_message(subject="two"))
    assert mirror.sync().status == "success"
    with session_scope() as session:
        crud_servers.delete_server(session, owner_id=mirror.owner_id, server_id=mirror.server_id)
    assert count_mismatches() == {}
    with session_scope() as session:
        for table in ("thread_sizes", "server_counts", "emails"):
            left = text(f"SELECT count(*) FROM {table} WHERE imap_server_id = :s")
            assert session.execute(left, {"s": mirror.server_id}).scalar_one() == 0, table
    assert kept_statistics(mirror.owner_id) == {"total_emails": 0, "total_threads": 0, "folders": {}}


def test_a_sync_batch_and_direct_inserts_in_one_transaction(mirror) -> None:
    """The sync's bulk insert and plain INSERT ... SELECTs before and after it, in one transaction,
    each joining an existing thread or starting one, are all counted."""
    mirror.deliver(make_message(subject="seed"))
    assert mirror.sync().status == "success"
    columns = "owner_id, imap_server_id, folder_id, folder, uidvalidity, uid, message_id, in_reply_to, "
    columns += '"references", subject, sender, sender_name, recipient, recipient_names, cc, date, flags, '
    columns += "seen, flagged, answered, size, body_text, body_html, thread_id, has_attachments, "
    columns += "announced, created_at, updated_at"
    direct = text(
        f"INSERT INTO emails ({columns}) SELECT {columns.replace(' uid,', ' uid + :u,')} FROM emails "
        "WHERE imap_server_id = :s AND uid = 1"
    )
    with session_scope() as session:
        (seed,) = session.execute(select(Email).where(Email.imap_server_id == mirror.server_id)).one()
        row = seed.model_dump(exclude={"id"})
        session.execute(direct, {"u": 100, "s": mirror.server_id})
        batch = [
            {**row, "uid": 200, "message_id": "<joins@x>"},  # joins the seed's thread
            {**row, "uid": 201, "message_id": "<new1@x>", "thread_id": "thr_batch"},
            {**row, "uid": 202, "message_id": "<new2@x>", "thread_id": "thr_batch"},
        ]
        crud_mirror.insert_emails(session, rows=batch, attachments=[[], [], []])
        session.execute(direct, {"u": 300, "s": mirror.server_id})
    assert count_mismatches() == {}
    kept = kept_statistics(mirror.owner_id)
    assert kept == scanned_statistics(mirror.owner_id)
    assert kept["total_emails"] == 6 and kept["total_threads"] == 2
