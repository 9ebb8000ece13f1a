"""Checks that the real-Dovecot test fixture behaves as the integration tests expect."""

from __future__ import annotations

import datetime as dt
import ssl
import time

from imapclient import IMAPClient

from tests.support.dovecot import DovecotServer


def test_capabilities(dovecot: DovecotServer, user: str) -> None:
    with dovecot.client(user) as client:
        caps = set(client.capabilities())
    assert {b"IDLE", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE", b"UIDPLUS", b"MOVE"} <= caps


def test_special_use_folders(dovecot: DovecotServer, user: str) -> None:
    with dovecot.client(user) as client:
        folders = {name: flags for flags, _sep, name in client.list_folders()}
        subscribed = {name for _flags, _sep, name in client.list_sub_folders()}
    for name, flag in [
        ("Sent", b"\\Sent"),
        ("Trash", b"\\Trash"),
        ("Junk", b"\\Junk"),
        ("Drafts", b"\\Drafts"),
        ("Archive", b"\\Archive"),
    ]:
        assert flag in folders[name]
        assert name in subscribed
    assert "INBOX" in folders


def test_users_added_after_start_log_in_immediately(dovecot: DovecotServer) -> None:
    for _ in range(3):
        name = dovecot.add_user(password="pw-1")
        with dovecot.client(name, "pw-1") as client:
            client.select_folder("INBOX")


def test_add_message_roundtrip(dovecot: DovecotServer, user: str) -> None:
    raw = b"Subject: hello\r\nFrom: a@example.org\r\n\r\nbody line\r\n"
    date = dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    dovecot.add_message(user, "INBOX", raw, flags="SR", internaldate=date)
    dovecot.add_message(user, "Sent", b"From someone Mon Jan  1 00:00:00 2024\r\n" + raw)
    with dovecot.client(user) as client:
        client.normalise_times = False
        client.select_folder("INBOX")
        items = ["BODY.PEEK[]", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
        data = client.fetch(client.search(), items)
        client.select_folder("Sent")
        sent = client.fetch(client.search(), ["BODY.PEEK[]"])
    [message] = data.values()
    assert message[b"BODY[]"] == raw
    assert message[b"RFC822.SIZE"] == len(raw)
    assert set(message[b"FLAGS"]) - {b"\\Recent"} == {b"\\Seen", b"\\Answered"}
    assert message[b"INTERNALDATE"] == date
    assert [m[b"BODY[]"] for m in sent.values()] == [raw]


def test_utf8_and_nested_folders(dovecot: DovecotServer, user: str) -> None:
    dovecot.create_folder(user, "Entwürfe")
    dovecot.create_folder(user, "Archive/2023")
    dovecot.add_message(user, "Projekte/Übersicht", b"Subject: x\r\n\r\ny\r\n")
    with dovecot.client(user) as client:
        names = {name for _flags, _sep, name in client.list_folders()}
        assert {"Entwürfe", "Archive/2023", "Projekte/Übersicht"} <= names
        assert client.select_folder("Projekte/Übersicht")[b"EXISTS"] == 1
        client.unselect_folder()
        dovecot.delete_folder(user, "Entwürfe")
        assert "Entwürfe" not in {name for _flags, _sep, name in client.list_folders()}


def test_implicit_tls_login(dovecot: DovecotServer, user: str) -> None:
    with dovecot.client(user, ssl=True) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_starttls_login(dovecot: DovecotServer, user: str) -> None:
    client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=30)
    assert b"STARTTLS" in client.capabilities()
    client.starttls(dovecot.ssl_context())
    assert isinstance(client._imap.sock, ssl.SSLSocket)
    client.login(user, "secret")
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()


def test_set_uidvalidity(dovecot: DovecotServer, user: str) -> None:
    dovecot.add_message(user, "INBOX", b"Subject: x\r\n\r\ny\r\n")
    with dovecot.client(user) as client:
        before = client.select_folder("INBOX")[b"UIDVALIDITY"]
        client.unselect_folder()
        dovecot.set_uidvalidity(user, "INBOX", before + 1000)
        assert client.select_folder("INBOX")[b"UIDVALIDITY"] == before + 1000


def test_bulk_add_messages(dovecot: DovecotServer, user: str) -> None:
    count = 2000
    started = time.monotonic()
    dovecot.add_messages(user, "Bulk", (b"Subject: %d\r\n\r\nbody\r\n" % i for i in range(count)))
    assert time.monotonic() - started < 10
    with dovecot.client(user) as client:
        assert client.select_folder("Bulk")[b"EXISTS"] == count
        subjects = client.fetch([1, count], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    # UIDs follow delivery order.
    assert subjects[1][b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() == b"Subject: 0"
    assert subjects[count][b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() == b"Subject: %d" % (count - 1)
