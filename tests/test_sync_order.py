"""A folder's new mail is fetched newest first; a sync cut short after its first batch converges exactly."""

from __future__ import annotations

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.sync.engine import run_sync
from imap2api.sync.plan import FIRST_BATCH, newest_first
from tests.support.messages import make_message


class WorkerDied(Exception):
    """Raised by the progress hook once a batch is committed: the sync stops there, as in a crash."""


def _sync_dying_after(mirror, batches: int):  # noqa: ANN001, ANN202
    """A sync whose worker dies once ``batches`` batches of new mail are committed."""
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=mirror.owner_id, server_id=mirror.server_id)
        run_id = crud_runs.start_run(session, server=server, trigger="manual")[0].id
    committed = []

    def die(done: int, _total: int) -> None:
        if done and done not in committed:
            committed.append(done)
        if len(committed) >= batches:
            raise WorkerDied

    return run_sync(run_id, on_progress=die)


def _deliver(mirror, subjects: list[str]) -> None:  # noqa: ANN001
    mirror.dovecot.add_messages(mirror.mail_user, "INBOX", [make_message(subject=text) for text in subjects])


def _inbox_uids(mirror) -> list[int]:  # noqa: ANN001
    with mirror.imap() as client:
        client.select_folder("INBOX", readonly=True)
        return sorted(client.search("ALL"))


def test_a_first_sync_stores_the_newest_mail_first_and_converges_after_a_crash(mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "sync_batch_messages", FIRST_BATCH + 30)
    total = FIRST_BATCH + 100
    _deliver(mirror, [f"m{n}" for n in range(total)])
    uids = _inbox_uids(mirror)

    cut = _sync_dying_after(mirror, batches=1)
    assert (cut.status, cut.error_code) == ("error", "SYNC_CRASHED")
    # Only the first batch was committed: the highest UIDs, the mail the API lists first.
    assert [email.uid for email in mirror.emails(folder="INBOX")] == uids[-FIRST_BATCH:]
    assert cut.progress_done == FIRST_BATCH and cut.progress_total == total

    done = mirror.sync()
    assert done.status == "success" and done.messages_new == total - FIRST_BATCH
    stored = mirror.emails(folder="INBOX")
    assert [email.uid for email in stored] == uids
    assert sorted(email.subject for email in stored) == sorted(f"m{n}" for n in range(total))
    assert mirror.events("email.received") == []  # still the first sync of the folder: nothing is news
    assert mirror.sync().messages_new == 0


def test_new_mail_cut_short_is_announced_exactly_once(mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "sync_batch_messages", FIRST_BATCH + 30)
    _deliver(mirror, [f"old{n}" for n in range(5)])
    assert mirror.sync().status == "success"
    fresh = FIRST_BATCH + 100
    _deliver(mirror, [f"new{n}" for n in range(fresh)])
    uids = _inbox_uids(mirror)

    cut = _sync_dying_after(mirror, batches=1)
    assert cut.status == "error"
    assert [email.uid for email in mirror.emails(folder="INBOX")] == uids[:5] + uids[-FIRST_BATCH:]
    # The committed batch was announced with it, oldest first within the batch.
    announced = [event["subject"] for event in mirror.events("email.received")]
    assert announced == [f"new{n}" for n in range(fresh - FIRST_BATCH, fresh)]

    assert mirror.sync().status == "success"
    assert [email.uid for email in mirror.emails(folder="INBOX")] == uids
    received = mirror.events("email.received")
    assert sorted(event["subject"] for event in received) == sorted(f"new{n}" for n in range(fresh))
    assert len({event["id"] for event in received}) == fresh  # each once


def test_every_folder_gives_its_newest_mail_before_any_folder_its_older(mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "sync_batch_messages", FIRST_BATCH + 30)
    mirror.dovecot.create_folder(mirror.mail_user, "Archive")
    per_folder = FIRST_BATCH + 60
    for folder in ("INBOX", "Archive"):
        messages = [make_message(subject=f"{folder}{n}") for n in range(per_folder)]
        mirror.dovecot.add_messages(mirror.mail_user, folder, messages)

    cut = _sync_dying_after(mirror, batches=2)
    assert cut.status == "error"
    # Two batches committed: the newest of INBOX and the newest of Archive, not INBOX's older mail.
    for folder in ("INBOX", "Archive"):
        stored = sorted(email.subject for email in mirror.emails(folder=folder))
        assert stored == sorted(f"{folder}{n}" for n in range(per_folder - FIRST_BATCH, per_folder))

    assert mirror.sync().status == "success"
    for folder in ("INBOX", "Archive"):
        assert len(mirror.emails(folder=folder)) == per_folder
    assert mirror.sync().messages_new == 0


def test_newest_first_takes_the_highest_uids_in_a_small_first_slice() -> None:
    assert list(newest_first([3, 1, 2, 7, 5, 4, 6, 9, 8, 10], first=3, size=4)) == [
        [10, 9, 8],
        [7, 6, 5, 4],
        [3, 2, 1],
    ]
    assert list(newest_first([2, 1], first=3, size=4)) == [[2, 1]]
    assert list(newest_first([])) == []
