"""The sync engine against a real Dovecot, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud.maintenance import refresh_statistics
from imap2api.db import session_scope
from imap2api.sync.engine import LeaseBusy, run_sync
from tests.support.messages import make_message, message_id_of


def test_first_sync_mirrors_every_folder_but_trash(mirror) -> None:
    mirror.dovecot.create_folder(mirror.mail_user, "Archive/2023")
    mirror.dovecot.create_folder(mirror.mail_user, "Entwürfe")
    mirror.deliver(
        make_message(
            subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
            to="Bob <bob@example.org>, carol@example.net",
            cc="Dan <dan@example.com>",
        )
    )
    mirror.deliver(make_message(subject="sent one"), folder="Sent", flags="S")
    mirror.deliver(make_message(subject="archived"), folder="Archive/2023")
    mirror.deliver(make_message(subject="draft"), folder="Entwürfe")
    mirror.deliver(make_message(subject="binned"), folder="Trash")
    mirror.deliver(make_message(subject="spam"), folder="Junk")

    run = mirror.sync()

    assert run.status == "success", run.error
    assert run.messages_new == 4 and run.progress_done == run.progress_total == 4
    by_subject = {email.subject: email for email in mirror.emails()}
    assert set(by_subject) == {"Grüße", "sent one", "archived", "draft"}
    inbox = by_subject["Grüße"]
    assert inbox.folder == "INBOX"
    assert inbox.sender == "alice@example.com" and inbox.sender_name == "Alice"
    assert inbox.recipient == "bob@example.org, carol@example.net"
    assert inbox.cc == "dan@example.com"
    assert inbox.message_id.startswith("<") and inbox.message_id.endswith("@example.com>")
    assert inbox.date == datetime(2024, 11, 27, 12, 0, tzinfo=UTC)
    assert inbox.body_text.startswith("Hello Bob,")
    assert not inbox.seen and by_subject["sent one"].seen
    assert by_subject["archived"].folder == "Archive/2023"
    assert by_subject["draft"].folder == "Entwürfe"


def test_sync_never_changes_flags_on_the_server(mirror) -> None:
    mirror.deliver(make_message(subject="unread"))
    assert mirror.sync().status == "success"
    with mirror.imap() as client:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search("ALL"))
    assert all(b"\\Seen" not in value for value in flags.values())


def test_unchanged_resync_fetches_nothing(mirror) -> None:
    for number in range(5):
        mirror.deliver(make_message(subject=f"m{number}"))
    first = mirror.sync()
    again = mirror.sync()
    assert first.bytes_fetched > 0
    assert again.status == "success"
    assert (again.messages_new, again.messages_updated, again.messages_deleted, again.bytes_fetched) == (
        0,
        0,
        0,
        0,
    )
    assert len(mirror.emails()) == 5


def test_new_mail_is_fetched_and_announced_once(mirror) -> None:
    mirror.deliver(make_message(subject="old"))
    mirror.sync()
    assert mirror.events("email.received") == []  # a first sync announces nothing

    mirror.deliver(make_message(subject="fresh"))
    run = mirror.sync()
    assert run.messages_new == 1
    received = mirror.events("email.received")
    assert [event["subject"] for event in received] == ["fresh"]
    fresh = mirror.emails(subject="fresh")[0]
    assert received[0]["id"] == fresh.id and received[0]["imap_server"] == mirror.server_id
    assert received[0]["thread_id"] == fresh.thread_id and received[0]["thread_count"] == 1

    mirror.sync()
    assert len(mirror.events("email.received")) == 1  # never announced again
    completed = mirror.events("sync.completed")
    assert len(completed) == 3 and completed[-1]["status"] == "success"
    assert completed[1]["messages_new"] == 1 and completed[1]["sync_run"] == run.id


def test_expunged_messages_leave_the_mirror(mirror) -> None:
    for number in range(3):
        mirror.deliver(make_message(subject=f"m{number}"))
    mirror.sync()
    with mirror.imap() as client:
        client.select_folder("INBOX")
        uid = client.search(["SUBJECT", "m1"])[0]
        client.delete_messages([uid])
        client.expunge()
    run = mirror.sync()
    assert run.messages_deleted == 1
    assert sorted(email.subject for email in mirror.emails()) == ["m0", "m2"]


def test_a_moved_message_changes_folder_and_is_not_news(mirror) -> None:
    mirror.deliver(make_message(subject="keep me"))
    mirror.deliver(make_message(subject="other"))
    mirror.sync()
    with mirror.imap() as client:
        client.select_folder("INBOX")
        client.move(client.search(["SUBJECT", "keep me"]), "Archive")
    mirror.sync()
    moved = mirror.emails(subject="keep me")
    assert [email.folder for email in moved] == ["Archive"]
    assert mirror.events("email.received") == []


def test_flag_changes_are_picked_up(mirror) -> None:
    mirror.deliver(make_message(subject="a"))
    mirror.deliver(make_message(subject="b"))
    mirror.sync()
    with mirror.imap() as client:
        client.select_folder("INBOX")
        uids = client.search(["SUBJECT", "a"])
        client.add_flags(uids, [b"\\Seen", b"\\Flagged", b"\\Answered"])
    run = mirror.sync()
    assert run.messages_updated == 1 and run.bytes_fetched == 0
    changed = mirror.emails(subject="a")[0]
    assert (changed.seen, changed.flagged, changed.answered) == (True, True, True)
    assert not mirror.emails(subject="b")[0].seen


def test_changed_uidvalidity_replaces_the_folder(mirror) -> None:
    mirror.deliver(make_message(subject="x"))
    mirror.deliver(make_message(subject="y"))
    mirror.sync()
    before = {email.uidvalidity for email in mirror.emails()}
    mirror.dovecot.set_uidvalidity(mirror.mail_user, "INBOX", 4242)
    run = mirror.sync()
    after = mirror.emails()
    assert run.status == "success"
    assert {email.uidvalidity for email in after} == {4242} != before
    assert sorted(email.subject for email in after) == ["x", "y"]
    assert mirror.events("email.received") == []


def test_a_folder_deleted_on_the_server_is_removed(mirror) -> None:
    mirror.dovecot.create_folder(mirror.mail_user, "Projects")
    mirror.deliver(make_message(subject="p"), folder="Projects")
    mirror.deliver(make_message(subject="i"))
    mirror.sync()
    assert {email.folder for email in mirror.emails()} == {"INBOX", "Projects"}
    mirror.dovecot.delete_folder(mirror.mail_user, "Projects")
    mirror.sync()
    assert {email.folder for email in mirror.emails()} == {"INBOX"}


def test_folders_to_sync_and_exclude_trash(mirror) -> None:
    mirror.deliver(make_message(subject="in"))
    mirror.deliver(make_message(subject="out"), folder="Sent")
    mirror.deliver(make_message(subject="bin"), folder="Trash")
    mirror.configure(folders_to_sync="Sent,Nope")
    mirror.sync()
    assert [email.subject for email in mirror.emails()] == ["out"]
    mirror.configure(folders_to_sync="", exclude_trash=False)
    mirror.sync()
    assert sorted(email.subject for email in mirror.emails()) == ["bin", "in", "out"]


def test_sync_limits(mirror) -> None:
    now = datetime.now(UTC)
    for age in (40, 20, 5, 1):
        mirror.deliver(
            make_message(subject=f"{age} days old", date=now - timedelta(days=age)),
            internaldate=now - timedelta(days=age),
        )
    mirror.configure(sync_limit_type="last_n", sync_limit_value=2)
    mirror.sync()
    assert sorted(email.subject for email in mirror.emails()) == ["1 days old", "5 days old"]
    mirror.configure(sync_limit_type="weeks", sync_limit_value=4)
    mirror.sync()
    assert sorted(email.subject for email in mirror.emails()) == ["1 days old", "20 days old", "5 days old"]
    mirror.configure(sync_limit_type="all", sync_limit_value=None)
    mirror.sync()
    assert len(mirror.emails()) == 4


def test_threads_follow_references_not_subjects(mirror) -> None:
    root = make_message(subject="Plan", message_id="<root@x>")
    reply = make_message(
        subject="Re: Plan", message_id="<r1@x>", in_reply_to="<root@x>", references=["<root@x>"]
    )
    # Its parent is not in the mailbox, yet it shares a thread with its sibling.
    orphan_a = make_message(
        subject="Re: Gone", message_id="<oa@x>", in_reply_to="<gone@x>", references=["<gone@x>"]
    )
    orphan_b = make_message(subject="Re: Gone", message_id="<ob@x>", references=["<gone@x>", "<oa@x>"])
    unrelated = make_message(subject="Plan", message_id="<other@x>")
    mirror.deliver(root)
    mirror.deliver(reply, folder="Sent")
    for raw in (orphan_a, orphan_b, unrelated):
        mirror.deliver(raw)
    mirror.sync()
    thread = {email.message_id: email.thread_id for email in mirror.emails()}
    assert thread["<root@x>"] == thread["<r1@x>"]
    assert thread["<oa@x>"] == thread["<ob@x>"]
    assert len({thread["<root@x>"], thread["<oa@x>"], thread["<other@x>"]}) == 3
    assert all(value.startswith("thr_") for value in thread.values())


def test_a_late_message_merges_two_threads(mirror) -> None:
    # Two replies to a message we have not seen yet, one referencing only the parent...
    mirror.deliver(make_message(subject="Re: A", message_id="<c1@x>", in_reply_to="<p@x>"))
    # ...and one referencing only its own parent's id, unknown so far.
    mirror.deliver(make_message(subject="Re: A", message_id="<c2@x>", in_reply_to="<q@x>"))
    mirror.sync()
    first = {email.message_id: email.thread_id for email in mirror.emails()}
    assert first["<c1@x>"] != first["<c2@x>"]
    # The late message links both.
    mirror.deliver(make_message(subject="A", message_id="<q@x>", references=["<p@x>"]))
    mirror.sync()
    after = {email.message_id: email.thread_id for email in mirror.emails()}
    assert after["<c1@x>"] == after["<c2@x>"] == after["<q@x>"]
    updates = mirror.events("thread.updated")
    assert len(updates) == 1
    assert updates[0]["thread_id"] == after["<q@x>"] and updates[0]["thread_count"] == 3
    assert updates[0]["merged_thread_ids"] == [
        t for t in (first["<c1@x>"], first["<c2@x>"]) if t != after["<q@x>"]
    ]


def test_malformed_mail_is_stored_as_best_it_can_be(mirror) -> None:
    mirror.deliver(b"\x00\xff garbage without headers \x80\x81\r\n")
    mirror.deliver(
        b"Subject: =?bogus-charset?B?SGVsbG8=?=\r\nDate: yesterday-ish\r\n"
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n"
    )
    run = mirror.sync()
    assert run.status == "success"
    emails = mirror.emails()
    assert len(emails) == 2
    assert all(email.date.year >= 2000 for email in emails)  # INTERNALDATE stood in


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"password": "wrong"}, "IMAP_AUTH_FAILED"),
        ({"port": 1}, "IMAP_CONNECTION_FAILED"),
        ({"use_ssl": True}, "IMAP_TLS_FAILED"),
    ],
)
def test_failures_are_stored_on_the_run(mirror, change, code) -> None:
    mirror.configure(**change)
    run = mirror.sync()
    assert run.status == "error" and run.error_code == code
    assert run.error and run.finished_at is not None
    completed = mirror.events("sync.completed")[-1]
    assert completed["status"] == "error" and completed["error_code"] == code


def test_implicit_tls(mirror) -> None:
    mirror.deliver(make_message(subject="over tls"))
    mirror.configure(port=mirror.dovecot.ssl_port, use_ssl=True)
    run = mirror.sync()
    assert run.status == "success", run.error
    assert [email.subject for email in mirror.emails()] == ["over tls"]


def test_one_sync_per_server_at_a_time(mirror) -> None:
    with session_scope() as session:
        assert crud_runs.acquire_lease(session, server_id=mirror.server_id, holder="someone-else", seconds=60)
    with pytest.raises(LeaseBusy):
        mirror.sync()
    with session_scope() as session:
        crud_runs.release_lease(session, server_id=mirror.server_id, holder="someone-else")
    # The run that found the lease taken is still queued, and is the one that now completes.
    run = mirror.sync()
    assert run.status == "success" and run.trigger == "manual"


def test_duplicate_message_ids_are_kept_per_folder(mirror) -> None:
    raw = make_message(subject="copy")
    mirror.deliver(raw)
    mirror.deliver(raw, folder="Sent")
    mirror.sync()
    copies = mirror.emails(message_id=message_id_of(raw))
    assert sorted(email.folder for email in copies) == ["INBOX", "Sent"]
    assert len({email.thread_id for email in copies}) == 1


def test_sqlite_statistics_follow_the_mailbox(mirror, database) -> None:
    mirror.dovecot.add_messages(mirror.mail_user, "INBOX", [make_message(subject=f"s{n}") for n in range(30)])
    assert mirror.sync().status == "success"
    with session_scope() as session:
        if database != "sqlite":
            assert refresh_statistics(session) is False  # PostgreSQL's autovacuum owns this
            return
        stat = session.exec(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'emails' LIMIT 1")).first()
        assert stat is not None and int(stat[0].split()[0]) >= 30
        assert refresh_statistics(session) is False  # unchanged since: nothing to do
        # Never the search index's own tables: stale, they make indexing slower with every batch.
        assert (
            session.exec(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl LIKE 'emails_fts%'")).one()[0] == 0
        )


def test_progress_has_its_total_before_the_first_message(mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "sync_batch_messages", 10)
    mirror.dovecot.add_messages(mirror.mail_user, "INBOX", [make_message(subject=f"i{n}") for n in range(25)])
    for folder in ("Sent", "Archive"):
        mirror.dovecot.add_messages(
            mirror.mail_user, folder, [make_message(subject=f"{folder}{n}") for n in range(5)]
        )
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=mirror.owner_id, server_id=mirror.server_id)
        run_id = crud_runs.start_run(session, server=server, trigger="manual")[0].id
    frames = []

    def seen(done: int, total: int) -> None:
        # The run row as an API reader sees it at this moment.
        with session_scope() as session:
            row = crud_runs.get_run(session, run_id=run_id)
            frames.append((row.progress_done, row.progress_total, row.folders_synced))

    run = run_sync(run_id, on_progress=seen)
    assert run.status == "success"
    # Four folders: INBOX, Sent, Archive and the empty Drafts (Trash and Junk are not synced).
    assert (run.progress_done, run.progress_total, run.folders_synced) == (35, 35, 4)
    assert all(done <= total for done, total, _ in frames)
    assert {total for done, total, _ in frames if done} == {35}  # known before the first message is stored
    folders = [folders for *_, folders in frames]
    assert folders == sorted(folders)
    assert any(0 < done < total and folders >= 2 for done, total, folders in frames)  # as folders finish
