"""Re-syncing an idle account: one LIST-STATUS and no EXAMINE, no folder writes; changes still seen.

Through the relay of tests/support/imap_proxy.py, which counts the commands a sync sends and, for the
fallbacks, hides LIST-STATUS (each folder is then examined) or CONDSTORE and QRESYNC (no folder can
be proven unchanged: each is examined and its flags swept).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.header import decode_header, make_header

import pytest

from tests.support.imap_proxy import ImapProxy, without_capabilities
from tests.support.messages import make_message
from tests.support.statements import recorded_statements

FOLDERS = ("INBOX", "Archive", "Sent", "Projects", "Über")  # "Über": STATUS names it in modified UTF-7


_OPEN = re.compile(r'^(?:EXAMINE|SELECT) ("[^"]*"|\S+)', re.IGNORECASE)


def opened(commands: list[str]) -> list[str]:
    """The folders the commands selected or examined, each once, sorted."""
    return sorted({match.group(1).strip('"') for text in commands if (match := _OPEN.match(text))})


@contextmanager
def folder_writes() -> Iterator[list[str]]:
    """The SQL statements that write the folders table, while the block runs."""
    found: list[str] = []
    with recorded_statements() as sent:
        yield found
    found += [
        text
        for text in (statement.upper() for statement in sent)
        if text.startswith(("UPDATE FOLDERS", "INSERT INTO FOLDERS", "DELETE FROM FOLDERS"))
    ]


def fill(dovecot, user: str) -> None:  # noqa: ANN001
    """Mail in FOLDERS (Drafts, Trash, Junk stay empty)."""
    for folder in FOLDERS:
        dovecot.add_messages(user, folder, [make_message(subject=f"{folder} {n}") for n in range(3)])


def server_flags(dovecot, user: str) -> dict[tuple[str, str], str]:  # noqa: ANN001
    """(folder, subject) -> flags of every message in FOLDERS, as the server has them."""
    from imap2api.sync.imap import flags_text

    found = {}
    with dovecot.client(user) as imap:
        for folder in FOLDERS:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            for data in (imap.fetch(uids, ["FLAGS", "ENVELOPE"]) if uids else {}).values():
                subject = str(make_header(decode_header(data[b"ENVELOPE"].subject.decode())))
                found[(folder, subject)] = flags_text(data[b"FLAGS"])
    return found


@pytest.fixture()
def relayed(dovecot, mirror):  # noqa: ANN001, ANN201
    """Factory: (mirror, relay) of the mirror's mailbox, filled, reached through a relay hiding ``hidden``."""
    proxies: list[ImapProxy] = []

    def factory(*hidden: bytes):  # noqa: ANN202
        fill(dovecot, mirror.mail_user)
        proxy = ImapProxy(dovecot.host, dovecot.port, rewrite=without_capabilities(*hidden)).start()
        proxies.append(proxy)
        mirror.configure(port=proxy.port, tls_mode="none")
        return mirror, proxy

    yield factory
    for proxy in proxies:
        proxy.stop()


def test_an_idle_resync_over_list_status_examines_nothing(relayed) -> None:  # noqa: ANN001
    mirror, proxy = relayed()
    assert mirror.sync().status == "success"
    proxy.clear()
    with folder_writes() as writes:
        run = mirror.sync()
    commands = proxy.texts()

    assert run.status == "success", run.error
    assert (run.messages_new, run.messages_updated, run.messages_deleted) == (0, 0, 0)
    assert opened(commands) == []
    assert [text for text in commands if text.upper().startswith("LIST")] == [
        'LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))'
    ]
    assert not [text for text in commands if text.upper().startswith(("STATUS", "UID", "FETCH"))]
    assert writes == []


def test_changed_folders_are_examined_and_mirrored(relayed, dovecot) -> None:  # noqa: ANN001
    mirror, proxy = relayed()
    assert mirror.sync().status == "success"
    user = mirror.mail_user
    mirror.deliver(make_message(subject="INBOX new"))  # new mail
    with dovecot.client(user) as imap:
        imap.select_folder("Archive")
        imap.add_flags(imap.search("ALL")[:1], [b"\\Flagged"])  # a flag change
        imap.select_folder("Sent")
        imap.delete_messages(imap.search("ALL")[:1])  # an expunge
        imap.expunge()
    dovecot.set_uidvalidity(user, "Projects", 77)  # recreated: a new generation
    proxy.clear()
    run = mirror.sync()

    assert run.status == "success", run.error
    assert opened(proxy.texts()) == ["Archive", "INBOX", "Projects", "Sent"]  # not Über, nor Drafts
    mirrored = {(email.folder, email.subject): email.flags for email in mirror.emails()}
    assert mirrored == server_flags(dovecot, user)
    assert ("Sent", "Sent 0") not in mirrored
    assert "\\Flagged" in mirrored[("Archive", "Archive 0")]
    assert run.messages_new == 4  # INBOX's new message and Projects' 3, its new generation


@pytest.mark.parametrize(
    "hidden",
    [(b"LIST-STATUS",), (b"CONDSTORE", b"QRESYNC")],
    ids=["no-list-status", "no-condstore"],
)
def test_without_list_status_or_condstore_every_folder_is_examined(relayed, dovecot, hidden) -> None:  # noqa: ANN001
    mirror, proxy = relayed(*hidden)
    assert mirror.sync().status == "success"
    proxy.clear()
    with folder_writes() as writes:
        idle = mirror.sync()
    idle_commands = proxy.texts()
    with dovecot.client(mirror.mail_user) as imap:
        imap.select_folder("Archive")
        imap.add_flags(imap.search("ALL")[:1], [b"\\Answered"])
    proxy.clear()
    changed = mirror.sync()

    assert idle.status == changed.status == "success"
    assert not [text for text in idle_commands if "RETURN" in text.upper()]
    # Drafts is empty but examined too: only a LIST-STATUS with HIGHESTMODSEQ could spare it.
    assert opened(idle_commands) == ["&ANw-ber", "Archive", "Drafts", "INBOX", "Projects", "Sent"]
    if b"CONDSTORE" not in hidden:
        assert writes == []  # EXAMINE proved each unchanged: nothing to write
    assert "Archive" in opened(proxy.texts())
    mirrored = {(email.folder, email.subject): email.flags for email in mirror.emails()}
    assert mirrored == server_flags(dovecot, mirror.mail_user)
    assert "\\Answered" in mirrored[("Archive", "Archive 0")]


def test_the_scheduler_queues_every_due_server_in_one_tick(mirror, monkeypatch) -> None:  # noqa: ANN001
    """Set-wise: one claiming UPDATE per claimed batch, one INSERT of runs per queued batch, whatever the
    number of servers; a server whose run is under way keeps it, and a deleted one gets none."""
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import sync_runs as crud_runs
    from imap2api.db import session_scope
    from imap2api.enums import SyncTrigger
    from imap2api.models import ImapServer
    from imap2api.validation import validate_server
    from imap2api.workers import scheduler
    from tests.conftest import _end_leftover_runs

    monkeypatch.setattr(scheduler, "CLAIM_BATCH", 3)  # several claims and queuing batches in one tick
    monkeypatch.setattr(scheduler, "QUEUE_BATCH", 2)
    data = validate_server({"name": "x", "host": "127.0.0.1", "port": 1, "username": "u", "password": "p"})
    with session_scope() as session:
        others = [crud_servers.create_server(session, owner_id=mirror.owner_id, data=data) for _ in range(6)]
        session.flush()
        ids = [mirror.server_id, *(server.id or 0 for server in others)]
        busy, gone = ids[1], ids[2]
        running_id = crud_runs.start_run(session, server=others[0], trigger=SyncTrigger.MANUAL)[0].id
    try:
        with session_scope() as session:
            session.delete(session.get(ImapServer, gone))
        with recorded_statements() as sent:
            due = scheduler.enqueue_due_syncs()
        assert set(ids) - {gone} <= set(due)
        assert not set(ids) & set(scheduler.enqueue_due_syncs())  # claimed until their interval passes
        with session_scope() as session:
            runs = {
                server_id: [
                    (run.id, run.trigger, run.status)
                    for run in crud_runs.list_runs(session, server_id=server_id)
                ]
                for server_id in ids
            }
        assert runs[busy] == [(running_id, "manual", "queued")]  # its manual run was kept, not doubled
        assert runs[gone] == []
        queued = [server_id for server_id in ids if server_id not in (busy, gone)]
        assert [[found[1:] for found in runs[server_id]] for server_id in queued] == [
            [("schedule", "queued")]
        ] * len(queued)
        claims = [text for text in sent if text.upper().startswith("UPDATE IMAP_SERVERS")]
        inserts = [text for text in sent if text.upper().startswith("INSERT INTO SYNC_RUNS")]
        assert len(claims) == -(-len(due) // 3) and len(inserts) == -(-len(due) // 2)
    finally:
        _end_leftover_runs()
