"""The sync against servers unlike the default Dovecot, made from real Dovecots and a loopback relay.

``courier_like`` is a second Dovecot announcing what Courier-IMAP does (no CONDSTORE, QRESYNC,
MOVE, UIDPLUS or ENABLE) with Courier's ``INBOX.`` namespace. The relay (tests/support/imap_proxy.py)
records the commands a sync sends and rewrites what a server answers: no ``[UIDNEXT]`` in SELECT,
no QRESYNC in CAPABILITY, NIL as hierarchy delimiter.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import update
from sqlmodel import select

from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.models import Folder
from imap2api.sync.connection import ImapAccount, connected
from imap2api.sync.imap import fetched_by_uid, flags_text, uid_ranges
from imap2api.validation import validate_server
from tests.conftest import Mirror
from tests.support.dovecot import DovecotServer
from tests.support.imap_proxy import ImapProxy, without_capabilities
from tests.support.messages import make_message

COURIER_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID IDLE NAMESPACE CHILDREN UNSELECT"


@pytest.fixture(scope="session")
def courier_like(dovecot) -> Iterator:
    """A Dovecot that looks like Courier-IMAP 5: fewer capabilities, folders under ``INBOX.``."""
    server = DovecotServer(tls=False, capabilities=COURIER_CAPABILITIES, prefix="INBOX.", separator=".")
    with server:
        yield server


@pytest.fixture()
def mirror_at(database: str, make_user):
    """Factory: a Mirror of ``mail_user`` reached on ``port`` in clear text (through a relay, usually)."""

    def factory(server, port: int, mail_user: str) -> Mirror:
        username, _, token = make_user()
        data = validate_server(
            {
                "name": f"mailbox of {mail_user}",
                "host": server.host,
                "port": port,
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
            return Mirror(server, mail_user, owner.id, token, row.id)

    return factory


def server_state(server, mail_user: str, folders: list[str]) -> dict[tuple[str, int], str]:
    """(folder, UID) -> flags of every message in ``folders``, read directly from the server."""
    state = {}
    with server.client(mail_user) as imap:
        for folder in folders:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            for uid, data in (imap.fetch(uids, ["FLAGS"]) if uids else {}).items():
                state[(folder, uid)] = flags_text(data[b"FLAGS"])
    return state


def mirror_state(mirror: Mirror) -> dict[tuple[str, int], str]:
    """(folder, UID) -> flags of every mirrored message."""
    return {(email.folder, email.uid): email.flags for email in mirror.emails()}


def uid_count(uid_set: str) -> int:
    """How many UIDs ``1:3,7`` names."""
    total = 0
    for part in uid_set.split(","):
        low, _, high = part.partition(":")
        total += int(high or low) - int(low) + 1
    return total


@pytest.mark.parametrize("profile", ["qresync", "condstore", "plain"])
def test_changes_are_mirrored_exactly(profile, mirror_at, dovecot, courier_like) -> None:
    server = courier_like if profile == "plain" else dovecot
    hidden = (b"QRESYNC",) if profile == "condstore" else ()
    inbox, archive, projects, trash = (
        "INBOX",
        f"{server.prefix}Archive",
        f"{server.prefix}Projects",
        f"{server.prefix}Trash",
    )
    user = server.add_user()
    server.add_messages(user, "INBOX", [make_message(subject=f"m{n}") for n in range(12)])
    with server.client(user) as imap:
        imap.create_folder(projects)
        imap.append(projects, make_message(subject="project"))
        imap.append(trash, make_message(subject="binned"))
    with ImapProxy(server.host, server.port, rewrite=without_capabilities(*hidden)) as proxy:
        mirror = mirror_at(server, proxy.port, user)
        assert mirror.sync().status == "success"
        with server.client(user) as imap:
            imap.select_folder("INBOX")
            uids = sorted(imap.search("ALL"))
            imap.add_flags(uids[0:2], [b"\\Seen"])
            imap.add_flags(uids[2:3], [b"\\Flagged"])
            imap.copy(uids[3:5], archive)  # a move as clients without MOVE make it: COPY, \Deleted, EXPUNGE
            imap.delete_messages(uids[3:8])
            imap.expunge()
        server.add_messages(user, "INBOX", [make_message(subject="new 1"), make_message(subject="new 2")])
        proxy.clear()
        run = mirror.sync()
        commands = proxy.texts()
        proxy.clear()
        again = mirror.sync()

    assert run.status == "success", run.error
    # The two copied-then-expunged messages moved (same ids): updated, neither new nor deleted.
    assert (run.messages_new, run.messages_deleted, run.messages_updated) == (2, 3, 5)
    assert mirror_state(mirror) == server_state(server, user, [inbox, archive, projects])
    assert {email.folder for email in mirror.emails()} == {inbox, archive, projects}  # never the trash
    assert sorted(event["subject"] for event in mirror.events("email.received")) == ["new 1", "new 2"]
    assert (again.messages_new, again.messages_deleted, again.messages_updated) == (0, 0, 0)
    sent = "\n".join(commands)
    if profile == "qresync":
        assert 'EXAMINE "INBOX" (QRESYNC (' in sent
        # Nothing lists the folder: searches only the new UIDs' range, fetches only new mail.
        searches = [c for c in commands if c.startswith("UID SEARCH")]
        assert all(re.fullmatch(r"UID SEARCH UID \d+:\d+", c) for c in searches)
        fetched = [c.split(" ")[2] for c in commands if c.startswith("UID FETCH")]
        assert fetched and all(uid_count(uids) <= 2 for uids in fetched)
        assert "CHANGEDSINCE" not in sent
    elif profile == "condstore":
        assert "QRESYNC" not in sent and "UID SEARCH ALL" in sent and "(CHANGEDSINCE " in sent
    else:
        assert "ENABLE" not in sent and "CHANGEDSINCE" not in sent
        assert any(c.startswith("UID FETCH") and c.endswith("(FLAGS)") for c in commands)  # the FLAGS sweep


@pytest.mark.parametrize("status_too", [False, True], ids=["status-uidnext", "no-uidnext-at-all"])
def test_new_mail_is_announced_where_select_has_no_uidnext(status_too, mirror_at, courier_like) -> None:
    def rewrite(line: bytes) -> bytes | None:
        if re.match(rb"\* OK \[UIDNEXT \d+\]", line):
            return None  # Courier sends no UIDNEXT in its SELECT answer
        if status_too and line.startswith(b"* STATUS "):
            return re.sub(rb" ?UIDNEXT \d+", b"", line)
        return line

    user = courier_like.add_user()
    courier_like.add_messages(user, "INBOX", [make_message(subject="old 1"), make_message(subject="old 2")])
    with ImapProxy(courier_like.host, courier_like.port, rewrite=rewrite) as proxy:
        mirror = mirror_at(courier_like, proxy.port, user)
        assert mirror.sync().status == "success"
        assert mirror.events("email.received") == []
        if status_too:
            # As left by a version that stored no UIDNEXT: the highest mirrored UID is the boundary.
            with session_scope() as session:
                statement = update(Folder).where(Folder.imap_server_id == mirror.server_id)
                session.exec(statement.values(uidnext=None))
        courier_like.add_messages(user, "INBOX", [make_message(subject=f"new {n}") for n in (1, 2)])
        run = mirror.sync()
        mirror.sync()
        asked_status = any(command.startswith("STATUS ") for command in proxy.texts())
    assert run.messages_new == 2
    assert sorted(event["subject"] for event in mirror.events("email.received")) == ["new 1", "new 2"]
    assert asked_status


def test_a_nil_hierarchy_delimiter_means_flat_names(mirror_at, dovecot) -> None:
    user = dovecot.add_user()
    dovecot.add_message(user, "Projects/Trash", make_message(subject="a project called Trash"))
    dovecot.add_message(user, "Trash", make_message(subject="binned"))

    def rewrite(line: bytes) -> bytes:
        return re.sub(rb'^(\* LIST \([^)]*\)) "/" ', rb"\1 NIL ", line)

    with ImapProxy(dovecot.host, dovecot.port, rewrite=rewrite) as proxy:
        mirror = mirror_at(dovecot, proxy.port, user)
        assert mirror.sync().status == "success"
    # Without a hierarchy "Projects/Trash" is one name, not a Trash folder; \Trash still is one.
    assert [(email.folder, email.subject) for email in mirror.emails()] == [
        ("Projects/Trash", "a project called Trash")
    ]
    with session_scope() as session:
        statement = select(Folder.delimiter).where(Folder.imap_server_id == mirror.server_id)
        delimiters = set(session.exec(statement))
    assert delimiters == {""}


def test_commands_go_out_without_waiting_for_acks(dovecot, user) -> None:
    # imapclient writes a UID SEARCH in two parts: with Nagle's algorithm the second waits for the
    # server's (delayed) ACK of the first. The option must survive STARTTLS, which wraps the socket.
    with connected(ImapAccount(dovecot.host, dovecot.port, user, "secret", tls_mode="starttls")) as client:
        assert client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_uid_responses_are_read_as_uids_and_ranges() -> None:
    # VANISHED stays ranges, cut below UIDNEXT: "1:4294967295" must not become four billion ints.
    assert uid_ranges("9:7,1,2:3,20:4294967295", below=12) == [(1, 3), (7, 9)]
    assert uid_ranges("1:4294967295", below=6) == [(1, 5)]
    assert uid_ranges("1:*", below=5) is None
    # An unsolicited FETCH (another client flagged message 5) carries no UID: never taken for UID 5.
    fetched = fetched_by_uid([b"5 (FLAGS (\\Seen))", b"3 (UID 9 FLAGS (\\Flagged))"], False)
    assert list(fetched) == [9] and fetched[9][b"FLAGS"] == (b"\\Flagged",)
