"""The change events (email.updated/moved/deleted, folder.created/deleted, server.initial_sync_completed)
and ids that survive moves, against the real Dovecot, on SQLite and PostgreSQL.

Moves are made as clients make them: MOVE, or COPY + ``\\Deleted`` + EXPUNGE; the sync is run as
Dovecot offers it (QRESYNC) and through a relay hiding QRESYNC, or QRESYNC and CONDSTORE.
"""

from __future__ import annotations

import pytest

from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.validation import validate_server
from tests.conftest import Mirror
from tests.support.imap_proxy import ImapProxy, without_capabilities
from tests.support.messages import make_message

CHANGE_EVENTS = ("email.updated", "email.moved", "email.deleted", "folder.created", "folder.deleted")
HIDDEN = {"qresync": (), "condstore": (b"QRESYNC",), "plain": (b"QRESYNC", b"CONDSTORE")}


def without_message_id(subject: str) -> bytes:
    """A message with no Message-ID header at all."""
    return (
        f"From: Carol <carol@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: {subject}\r\n"
        "Date: Wed, 27 Nov 2024 12:00:00 +0000\r\n\r\nNo id here.\r\n"
    ).encode()


def change_events(mirror: Mirror) -> list[dict]:
    """Every change event of the mirror (not sync.completed, received, thread or initial)."""
    return [event for event in mirror.events() if event["type"] in CHANGE_EVENTS]


def by_subject(mirror: Mirror) -> dict[str, object]:
    """The mirrored emails by subject."""
    return {email.subject: email for email in mirror.emails()}


def move(imap, uids: list[int], folder: str, *, by: str) -> None:
    """Move messages of the selected folder as a client does: MOVE, or COPY + \\Deleted + EXPUNGE."""
    if by == "move":
        imap.move(uids, folder)
    else:
        imap.copy(uids, folder)
        imap.delete_messages(uids)
        imap.expunge()


def uids_of(imap, folder: str, subjects: list[str]) -> list[int]:
    """The UIDs of the messages with these subjects in ``folder`` (which is then selected)."""
    imap.select_folder(folder)
    found = []
    for subject in subjects:
        found += imap.search(["SUBJECT", subject])
    return found


@pytest.fixture()
def mirror_via(database: str, make_user, dovecot):
    """Factory: a Mirror of a fresh Dovecot user, synced through a relay hiding ``hidden`` capabilities."""
    proxies = []

    def factory(hidden: tuple[bytes, ...]) -> Mirror:
        mail_user = dovecot.add_user()
        proxy = ImapProxy(dovecot.host, dovecot.port, rewrite=without_capabilities(*hidden))
        proxy.__enter__()
        proxies.append(proxy)
        username, _, token = make_user()
        data = validate_server(
            {
                "name": f"mailbox of {mail_user}",
                "host": dovecot.host,
                "port": proxy.port,
                "username": mail_user,
                "password": "secret",
                "tls_mode": "none",
            }
        )
        with session_scope() as session:
            owner = crud_users.get_user_by_username(session, username=username)
            assert owner is not None and owner.id is not None
            row = crud_servers.create_server(session, owner_id=owner.id, data=data)
            assert row.id is not None
            return Mirror(dovecot, mail_user, owner.id, token, row.id)

    yield factory
    for proxy in proxies:
        proxy.__exit__(None, None, None)


def test_first_sync_is_announced_once_and_floods_nothing(mirror) -> None:
    for n in range(3):
        mirror.deliver(make_message(subject=f"old {n}"))
    with mirror.imap() as imap:
        assert b"OBJECTID" not in imap.capabilities()  # so moves are matched (docs/sync.md)
        imap.create_folder("Archive")
        imap.append("Archive", make_message(subject="archived"))
        imap.add_flags(uids_of(imap, "INBOX", ["old 0"]), [b"\\Seen"])
    assert mirror.sync().status == "success"
    assert mirror.sync().status == "success"

    [initial] = mirror.events("server.initial_sync_completed")
    assert initial["imap_server"] == mirror.server_id
    assert initial["emails"] == 4
    assert {"INBOX", "Archive"} <= set(initial["folders"])
    assert change_events(mirror) == []
    assert mirror.events("email.received") == []


def test_flags_expunges_and_folders_are_events_once(mirror) -> None:
    mirror.deliver(make_message(subject="keep"))
    mirror.deliver(make_message(subject="drop"))
    mirror.sync()
    emails = by_subject(mirror)
    with mirror.imap() as imap:
        imap.add_flags(uids_of(imap, "INBOX", ["keep"]), [b"\\Seen", b"\\Flagged"])
        imap.delete_messages(uids_of(imap, "INBOX", ["drop"]))
        imap.expunge()
        imap.create_folder("Projects")
    assert mirror.sync().status == "success"
    assert mirror.sync().status == "success"  # nothing twice

    [updated] = mirror.events("email.updated")
    assert updated["id"] == emails["keep"].id
    assert (updated["folder"], updated["seen"], updated["flagged"], updated["answered"]) == (
        "INBOX",
        True,
        True,
        False,
    )
    assert set(updated["flags"].split()) == {"\\Seen", "\\Flagged"}
    [deleted] = mirror.events("email.deleted")
    assert (deleted["id"], deleted["folder"]) == (emails["drop"].id, "INBOX")
    [created] = mirror.events("folder.created")
    assert created["folder"] == "Projects" and created["imap_server"] == mirror.server_id
    assert mirror.events("folder.deleted") == [] and mirror.events("email.moved") == []

    with mirror.imap() as imap:
        imap.delete_folder("Projects")
    mirror.sync()
    mirror.sync()
    [dropped] = mirror.events("folder.deleted")
    assert (dropped["folder"], dropped["reason"], dropped["emails_deleted"]) == ("Projects", "gone", 0)
    assert len(mirror.events("email.deleted")) == 1


@pytest.mark.parametrize(
    ("profile", "by"), [("qresync", "move"), ("qresync", "copy"), ("condstore", "move"), ("plain", "copy")]
)
def test_moved_mail_keeps_its_id_in_both_folder_orders(profile, by, mirror_via) -> None:
    mirror = mirror_via(HIDDEN[profile])
    root = make_message(subject="root", message_id="<root@example.com>")
    reply = make_message(subject="reply", message_id="<reply@example.com>", in_reply_to="<root@example.com>")
    mirror.deliver(root)
    mirror.deliver(reply)
    mirror.deliver(without_message_id("anonymous"))
    mirror.deliver(make_message(subject="stays"))
    with mirror.imap() as imap:
        imap.create_folder("Aaa")  # sorts before INBOX: listed first
        imap.create_folder("Zzz")  # after it
    assert mirror.sync().status == "success"
    before = by_subject(mirror)
    assert before["reply"].thread_id == before["root"].thread_id

    # Out of INBOX into a folder listed before it, and into one listed after it.
    with mirror.imap() as imap:
        move(imap, uids_of(imap, "INBOX", ["reply"]), "Aaa", by=by)
        move(imap, uids_of(imap, "INBOX", ["root", "anonymous"]), "Zzz", by=by)
    run = mirror.sync()
    assert run.status == "success", run.error
    after = by_subject(mirror)
    assert {subject: email.folder for subject, email in after.items()} == {
        "root": "Zzz",
        "reply": "Aaa",
        "anonymous": "Zzz",
        "stays": "INBOX",
    }
    for subject in ("root", "reply", "anonymous", "stays"):
        assert after[subject].id == before[subject].id
        assert after[subject].thread_id == before[subject].thread_id
    moved = {event["id"]: event for event in mirror.events("email.moved")}
    assert set(moved) == {before[s].id for s in ("root", "reply", "anonymous")}
    reply_moved = moved[before["reply"].id]
    assert (reply_moved["from_folder"], reply_moved["to_folder"]) == ("INBOX", "Aaa")
    assert moved[before["root"].id]["to_folder"] == "Zzz"
    assert moved[before["root"].id]["thread_id"] == before["root"].thread_id
    assert (run.messages_new, run.messages_deleted, run.messages_updated) == (0, 0, 3)

    # And back: out of folders listed before and after INBOX.
    with mirror.imap() as imap:
        move(imap, uids_of(imap, "Aaa", ["reply"]), "INBOX", by=by)
        move(imap, uids_of(imap, "Zzz", ["root", "anonymous"]), "INBOX", by=by)
    assert mirror.sync().status == "success"
    assert mirror.sync().status == "success"
    back = by_subject(mirror)
    assert {email.folder for email in back.values()} == {"INBOX"}
    assert {subject: email.id for subject, email in back.items()} == {
        subject: email.id for subject, email in before.items()
    }
    assert len(mirror.events("email.moved")) == 6
    assert [e["to_folder"] for e in mirror.events("email.moved")[3:]] == ["INBOX"] * 3
    assert mirror.events("email.received") == [] and mirror.events("email.deleted") == []
    assert len(mirror.emails()) == 4


def test_copies_are_new_ids_unannounced_and_new_mail_still_received(mirror) -> None:
    mirror.deliver(make_message(subject="original"))
    with mirror.imap() as imap:
        imap.create_folder("Copies")
    mirror.sync()
    with mirror.imap() as imap:
        imap.copy(uids_of(imap, "INBOX", ["original"]), "Copies")
    mirror.deliver(make_message(subject="fresh"))
    assert mirror.sync().status == "success"

    assert [event["subject"] for event in mirror.events("email.received")] == ["fresh"]
    assert sorted(email.folder for email in mirror.emails(subject="original")) == ["Copies", "INBOX"]
    assert mirror.events("email.moved") == [] and mirror.events("email.deleted") == []


def test_a_changed_uidvalidity_is_no_per_email_event(mirror) -> None:
    for n in range(3):
        mirror.deliver(make_message(subject=f"m{n}"))
    mirror.sync()
    mirror.dovecot.set_uidvalidity(mirror.mail_user, "INBOX", 4242)
    assert mirror.sync().status == "success"

    assert {email.uidvalidity for email in mirror.emails()} == {4242}
    assert change_events(mirror) == []
    assert mirror.events("email.received") == []


def test_a_copy_seen_before_its_original_went_is_a_move(mirror: Mirror) -> None:
    # A client without MOVE: COPY, and only later \Deleted + EXPUNGE, with a sync in between.
    mirror.deliver(make_message(subject="slow mover", message_id="<slow@example.com>"))
    mirror.sync()
    (original,) = mirror.emails()
    with mirror.imap() as client:
        client.select_folder("INBOX")
        client.copy(client.search(["ALL"]), "Archive")
    between = mirror.sync()
    assert between.messages_new == 1  # the copy, mirrored as an email of its own ...
    assert not mirror.events("email.received")  # ... never announced: its Message-ID is known
    with mirror.imap() as client:
        client.select_folder("INBOX")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
    after = mirror.sync()
    (moved,) = mirror.emails()
    assert (moved.id, moved.folder, moved.thread_id) == (original.id, "Archive", original.thread_id)
    assert (after.messages_updated, after.messages_deleted) == (1, 0)
    (event,) = change_events(mirror)
    assert (event["type"], event["id"], event["from_folder"], event["to_folder"]) == (
        "email.moved",
        original.id,
        "INBOX",
        "Archive",
    )
