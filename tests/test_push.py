"""Push against the real Dovecot, on SQLite and PostgreSQL: NOTIFY, IDLE and STATUS polling (capabilities
hidden by a relay), a forced disconnect, a server restart, and a watch moving to another process.

Mail is appended over IMAP, as a delivery agent or another client would: Dovecot's NOTIFY reports
what its own processes write, not Maildir files written behind its back (those reach IDLE, and the
scheduled full sync, which stays the safety net).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.db import session_scope
from imap2api.models import ImapServer, utcnow
from imap2api.validation import validate_server
from imap2api.watch.manager import WatchManager
from tests.conftest import Mirror
from tests.support.dovecot import DovecotServer
from tests.support.imap_proxy import ImapProxy, without_capabilities
from tests.support.messages import make_message
from tests.support.receiver import Receiver
from tests.support.serve import add_imap_server, served
from tests.support.webhook_checks import wait_until

WAIT_SECONDS = 30.0  # generous: what is checked is that it happens, not how fast (bench/push.py measures)
# Dovecot offers NOTIFY; INBOX, Sent and Archive (WATCH_IDLE_FOLDERS) get an IDLE each beside it.
NOTIFY_STATUS = "NOTIFY; IDLE on INBOX, Sent, Archive"


@pytest.fixture()
def fast_watch(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short leases and polls, so that take-overs and polling show within a test; and only this test's
    servers watchable (the database is shared by the session: earlier tests' servers are in it)."""
    with session_scope() as session:
        session.exec(
            update(ImapServer).where(col(ImapServer.owner_id) != mirror.owner_id).values(is_active=False)
        )
    monkeypatch.setattr(settings, "watch_lease_seconds", 3)
    monkeypatch.setattr(settings, "watch_poll_seconds", 1.0)
    monkeypatch.setattr(settings, "watch_reconnect_max_seconds", 2.0)


@contextmanager
def watching() -> Iterator[WatchManager]:
    """A watch manager of this process, stopped (leases given back) afterwards."""
    manager = WatchManager(tick=0.5)
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()


def watch_status(mirror: Mirror) -> str:
    """The server's watch_status."""
    with session_scope() as session:
        server = session.get(ImapServer, mirror.server_id)
        assert server is not None
        return server.watch_status


def watched(mirror: Mirror, start: str) -> str:
    """Wait until the watch says it listens (its status starts with ``start``) and its catch-up is done."""
    status = wait_until(
        what=f"watch status {start!r}",
        condition=lambda: watch_status(mirror).startswith(start) and watch_status(mirror),
    )
    return str(status)


def append(mirror: Mirror, folder: str, subject: str) -> None:
    """APPEND a message over IMAP, as another client would."""
    with mirror.imap() as client:
        client.append(folder, make_message(subject=subject))


def arrived(mirror: Mirror, subject: str, folder: str = "INBOX") -> object:
    """Wait for an email to be mirrored in ``folder``; returns it."""
    return wait_until(
        what=f"{subject!r} mirrored in {folder}",
        condition=lambda: next((e for e in mirror.emails(subject=subject) if e.folder == folder), None),
    )


def received_subjects(mirror: Mirror) -> list[str]:
    """Subjects of the email.received events."""
    return [event["subject"] for event in mirror.events("email.received")]


def test_notify_hears_every_folder(client, mirror: Mirror, fast_watch: None) -> None:
    mirror.deliver(make_message(subject="before"))
    mirror.sync()
    with watching():
        assert watched(mirror, "NOTIFY") == NOTIFY_STATUS
        shown = client.get(f"/api/imap-servers/{mirror.server_id}/", headers=mirror.headers).json()
        assert shown["watch_status"] == NOTIFY_STATUS
        append(mirror, "INBOX", "new in inbox")
        inbox_mail = arrived(mirror, "new in inbox")
        append(mirror, "Archive", "new in archive")
        arrived(mirror, "new in archive", "Archive")
        with mirror.imap() as client:
            client.select_folder("INBOX")
            uids = client.search(["SUBJECT", "new in inbox"])
            client.add_flags(uids, [b"\\Seen", b"\\Flagged"])
            wait_until(what="email.updated", condition=lambda: mirror.events("email.updated"))
            client.move(uids, "Sent")
        # The id survives the move. A push sync of Sent alone may mirror the message there for a moment
        # as a copy of its own, until the sync of INBOX finds it gone and it takes the copy's place.
        wait_until(
            what="the moved email in Sent, with its id",
            condition=lambda: any(e.id == inbox_mail.id for e in mirror.emails(folder="Sent")),
        )
        with mirror.imap() as client:
            client.create_folder("Projects")
        wait_until(what="folder.created", condition=lambda: mirror.events("folder.created"))
    assert sorted(received_subjects(mirror)) == ["new in archive", "new in inbox"]
    updated = mirror.events("email.updated")[0]
    assert updated["seen"] is True and updated["flagged"] is True
    (move,) = mirror.events("email.moved")
    assert (move["from_folder"], move["to_folder"], move["id"]) == ("INBOX", "Sent", inbox_mail.id)
    assert [event["folder"] for event in mirror.events("folder.created")] == ["Projects"]
    assert not mirror.events("email.deleted")
    assert len(mirror.events("sync.completed")) == 1  # push syncs keep no run and announce no completion


@pytest.fixture()
def hidden(mirror: Mirror, request: pytest.FixtureRequest) -> Iterator[Mirror]:
    """The mirror seen through a relay that hides the capabilities named by the test's parameter."""
    with ImapProxy(mirror.dovecot.host, mirror.dovecot.port, without_capabilities(*request.param)) as proxy:
        mirror.configure(host=proxy.host, port=proxy.port, tls_mode="none", password="secret")
        mirror.proxy = proxy  # type: ignore[attr-defined]
        yield mirror


@pytest.mark.parametrize("hidden", [(b"NOTIFY",)], indirect=True)
def test_idle_on_inbox_and_the_folders_that_matter_polling_the_rest(
    hidden: Mirror, fast_watch: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = hidden
    monkeypatch.setattr(settings, "watch_max_connections", 3)
    mirror.sync()
    with watching():
        status = watched(mirror, "IDLE on INBOX")
        # Sent and Archive get an IDLE connection each (WATCH_MAX_CONNECTIONS 3); Drafts is polled
        # (Trash and Junk are not mirrored: exclude_trash).
        assert status == "IDLE on INBOX; IDLE on Sent, Archive; STATUS every 1 s on 1 folder"
        append(mirror, "INBOX", "idle inbox")
        append(mirror, "Archive", "idle archive")
        append(mirror, "Drafts", "polled drafts")
        mirror.deliver(make_message(subject="maildir write"))  # IDLE hears files written behind Dovecot
        for subject, folder in [
            ("idle inbox", "INBOX"),
            ("idle archive", "Archive"),
            ("polled drafts", "Drafts"),
        ]:
            arrived(mirror, subject, folder)
        arrived(mirror, "maildir write")
    assert sorted(received_subjects(mirror)) == [
        "idle archive",
        "idle inbox",
        "maildir write",
        "polled drafts",
    ]


@pytest.mark.parametrize("hidden", [(b"NOTIFY", b"IDLE")], indirect=True)
def test_status_polling_without_idle(hidden: Mirror, fast_watch: None) -> None:
    mirror = hidden
    mirror.sync()
    with watching():
        assert watched(mirror, "STATUS") == "STATUS polling; STATUS every 1 s on 4 folders"
        append(mirror, "INBOX", "polled inbox")
        append(mirror, "Drafts", "polled drafts")
        arrived(mirror, "polled inbox")
        arrived(mirror, "polled drafts", "Drafts")
    assert sorted(received_subjects(mirror)) == ["polled drafts", "polled inbox"]


def test_a_forced_disconnect_reconnects_and_catches_up(mirror: Mirror, fast_watch: None) -> None:
    mirror.sync()
    with watching() as manager:
        watched(mirror, "NOTIFY")
        first = manager.watches[mirror.server_id]
        mirror.dovecot.doveadm("kick", mirror.mail_user)  # the server drops every connection of the user
        wait_until(what="reconnecting", condition=lambda: watch_status(mirror).startswith("reconnecting"))
        append(mirror, "INBOX", "sent while disconnected")  # nobody listens: the catch-up finds it
        arrived(mirror, "sent while disconnected")
        assert watched(mirror, "NOTIFY") == NOTIFY_STATUS
        assert manager.watches[mirror.server_id] is first  # the same watch, reconnected
        append(mirror, "INBOX", "after reconnecting")
        arrived(mirror, "after reconnecting")
    assert sorted(received_subjects(mirror)) == ["after reconnecting", "sent while disconnected"]


@pytest.fixture()
def own_dovecot(mirror: Mirror) -> Iterator[Mirror]:
    """The mirror pointed at a Dovecot of its own (clear text: its certificate is nobody's), to restart."""
    server = DovecotServer(tls=False)
    server.start()
    try:
        mail_user = server.add_user()
        mirror.dovecot, mirror.mail_user = server, mail_user
        mirror.configure(
            host=server.host, port=server.port, tls_mode="none", username=mail_user, password="secret"
        )
        yield mirror
    finally:
        server.stop()


def test_a_server_restart_is_survived(own_dovecot: Mirror, fast_watch: None) -> None:
    mirror = own_dovecot
    mirror.sync()
    with watching():
        watched(mirror, "NOTIFY")
        mirror.dovecot.restart(pause=1.0)
        append(mirror, "INBOX", "after the restart")
        arrived(mirror, "after the restart")
        assert watched(mirror, "NOTIFY") == NOTIFY_STATUS
    assert received_subjects(mirror) == ["after the restart"]


def watch_owner(mirror: Mirror) -> str | None:
    """Which process holds the server's watch lease."""
    with session_scope() as session:
        server = session.get(ImapServer, mirror.server_id)
        assert server is not None
        return server.watch_owner


def test_a_stopping_process_hands_its_servers_over(mirror: Mirror, fast_watch: None) -> None:
    mirror.sync()
    with watching() as first:
        watched(mirror, "NOTIFY")
        assert watch_owner(mirror) == first.holder
        with watching() as second:
            first.stop()  # gives its leases back: the other takes over at its next tick, not after the lease
            wait_until(
                what="the second process watches", condition=lambda: watch_owner(mirror) == second.holder
            )
            watched(mirror, "NOTIFY")
            append(mirror, "INBOX", "heard by the second")
            arrived(mirror, "heard by the second")


def test_an_inactive_server_is_not_watched(mirror: Mirror, fast_watch: None) -> None:
    mirror.sync()
    with watching() as manager:
        watched(mirror, "NOTIFY")
        with session_scope() as session:  # as the admin's "deactivate" does
            server = session.get(ImapServer, mirror.server_id)
            assert server is not None
            server.is_active = False
        wait_until(what="the watch stopped", condition=lambda: mirror.server_id not in manager.watches)
        assert watch_owner(mirror) is None and watch_status(mirror) == ""
        append(mirror, "INBOX", "while inactive")
        manager.ticked.clear()
        wait_until(what="another tick", condition=manager.ticked.is_set)
        assert not mirror.emails(subject="while inactive")


def test_a_slow_copy_then_expunge_heard_apart_is_a_move(mirror: Mirror, fast_watch: None) -> None:
    mirror.sync()
    with watching():
        watched(mirror, "NOTIFY")
        append(mirror, "INBOX", "filed slowly")
        original = arrived(mirror, "filed slowly")
        with mirror.imap() as client:
            client.select_folder("INBOX")
            uids = client.search(["SUBJECT", "filed slowly"])
            client.copy(uids, "Archive")
            arrived(mirror, "filed slowly", "Archive")  # the copy was pushed on its own
            client.delete_messages(uids)
            client.expunge()
        wait_until(
            what="the copy adopted",
            condition=lambda: [e.id for e in mirror.emails(subject="filed slowly")] == [original.id],
        )
    (moved,) = mirror.emails(subject="filed slowly")
    assert moved.folder == "Archive"
    assert received_subjects(mirror) == ["filed slowly"]
    assert [(e["id"], e["to_folder"]) for e in mirror.events("email.moved")] == [(original.id, "Archive")]
    assert not mirror.events("email.deleted")


def test_watches_are_shared_between_processes(mirror: Mirror, fast_watch: None) -> None:
    mirror.sync()
    server_ids = [mirror.server_id]
    for _ in range(3):  # three more accounts of the same owner, each on a mailbox of its own
        mail_user = mirror.dovecot.add_user()
        data = validate_server(
            {
                "name": mail_user,
                "host": mirror.dovecot.host,
                "port": mirror.dovecot.port,
                "username": mail_user,
                "password": "secret",
                "use_ssl": False,
            }
        )
        with session_scope() as session:
            server = crud_servers.create_server(session, owner_id=mirror.owner_id, data=data)
            server.last_sync = utcnow()  # as after a first full sync: watchable
            session.add(server)
            session.flush()
            server_ids.append(server.id or 0)

    def holders() -> dict[int, str | None]:
        with session_scope() as session:
            rows = session.exec(select(ImapServer).where(col(ImapServer.id).in_(server_ids))).all()
            return {row.id or 0: row.watch_owner for row in rows}

    with watching() as first:
        wait_until(
            what="the first process watches all four",
            condition=lambda: set(holders().values()) == {first.holder},
        )
        with watching() as second:
            # The second process holds nothing yet, and is counted all the same: half move to it.
            two_each = Counter({first.holder: 2, second.holder: 2})
            wait_until(what="two each", condition=lambda: Counter(holders().values()) == two_each)
            ends = time.monotonic() + 3  # and it stays so over several ticks
            while time.monotonic() < ends:
                assert Counter(holders().values()) == two_each
                time.sleep(0.2)


def test_pushed_mail_reaches_a_webhook(client, mirror: Mirror, fast_watch: None) -> None:
    mirror.sync()
    with Receiver() as receiver:
        created = client.post(
            "/api/webhooks/", headers=mirror.headers, json={"url": receiver.url, "events": ["email.received"]}
        )
        assert created.status_code == 201, created.text
        with watching():
            watched(mirror, "NOTIFY")
            append(mirror, "INBOX", "to the webhook")
            # Relayed by the push sync itself, delivered by the embedded worker's jobs lane.
            (request,) = wait_until(what="the delivery", condition=lambda: receiver.requests)
    body = request.json
    assert (body["type"], body["data"]["subject"]) == ("email.received", "to the webhook")
    assert body["data"]["cursor"]


def test_imap2api_serve_watches_on_its_own(tmp_path: Path, dovecot) -> None:
    """The README's one command (embedded: SQLite, in-process worker) pushes new mail, no setup."""
    mail_user = dovecot.add_user()
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
    subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "createuser", "ann", "--password", "password-1"],
        env={**env, "IMAP2API_DATA_DIR": str(tmp_path / "data")},
        check=True,
        capture_output=True,
    )
    with served(tmp_path, imap_ca_file=str(dovecot.ca_cert_path), scheduler_enabled="true") as url:
        token = httpx.post(
            f"{url}/api-token-auth/", json={"username": "ann", "password": "password-1"}
        ).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        server_id = add_imap_server(url, headers, dovecot, mail_user, "ann")
        synced = httpx.post(f"{url}/api/imap-servers/{server_id}/sync/", headers=headers, timeout=60)
        assert synced.status_code == 200, synced.text

        def status() -> str:
            return httpx.get(f"{url}/api/imap-servers/{server_id}/", headers=headers).json()["watch_status"]

        wait_until(what="the embedded worker watches", condition=lambda: status() == NOTIFY_STATUS)
        with dovecot.client(mail_user) as client:
            client.append("Archive", make_message(subject="pushed by serve"))

        def subjects() -> list[str]:
            answer = httpx.get(f"{url}/api/emails/?imap_server={server_id}", headers=headers).json()
            return [email["subject"] for email in answer["results"]]

        wait_until(what="the mail is served", condition=lambda: "pushed by serve" in subjects())
        runs = httpx.post(
            f"{url}/graphql",
            headers=headers,
            json={
                "query": "query($s: ID!) { syncRuns(imapServer: $s) { id } }",
                "variables": {"s": server_id},
            },
        ).json()["data"]["syncRuns"]
        assert len(runs) == 1  # the push needed no sync run, scheduled or asked for


@pytest.mark.parametrize(
    ("hidden", "mode"),
    [((), "NOTIFY"), ((b"NOTIFY",), "IDLE on INBOX")],
    indirect=["hidden"],
    ids=["notify", "idle"],
)
def test_idle_is_reissued_and_keeps_hearing(hidden: Mirror, mode: str, fast_watch: None, monkeypatch) -> None:
    mirror = hidden
    monkeypatch.setattr(settings, "watch_idle_seconds", 1.0)
    mirror.sync()
    with watching():
        watched(mirror, mode)
        time.sleep(3.5)  # three renewals
        append(mirror, "INBOX", "after renewals")
        arrived(mirror, "after renewals")
    texts = mirror.proxy.texts()  # type: ignore[attr-defined]
    assert texts.count("IDLE") >= 4, texts


@pytest.mark.parametrize("hidden", [()], indirect=True)
def test_a_notify_connection_that_heard_something_is_renewed(
    hidden: Mirror, fast_watch: None, monkeypatch
) -> None:
    mirror = hidden
    monkeypatch.setattr(settings, "watch_notify_renew_seconds", 1.0)
    mirror.sync()
    with watching():
        watched(mirror, "NOTIFY")
        time.sleep(2.5)  # quiet: nothing heard, nothing renewed
        quiet = [t for t in mirror.proxy.texts() if t.startswith("NOTIFY")]  # type: ignore[attr-defined]
        assert len(quiet) == 1
        append(mirror, "Archive", "before the renewal")
        arrived(mirror, "before the renewal", "Archive")
        wait_until(
            lambda: len([t for t in mirror.proxy.texts() if t.startswith("NOTIFY")]) >= 2,  # type: ignore[attr-defined]
            what="a fresh NOTIFY connection",
        )
        append(mirror, "Archive", "after the renewal")
        arrived(mirror, "after the renewal", "Archive")
    assert sorted(received_subjects(mirror)) == ["after the renewal", "before the renewal"]
