"""The emailChanges subscription: every outbox event live, against the real Dovecot, on both databases."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from imap2api import pubsub
from imap2api.crud import events as crud_events
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.validation import validate_server
from tests.conftest import Mirror
from tests.support.messages import make_message
from tests.test_events_and_moves import uids_of
from tests.test_subscriptions import _open

WAIT_SECONDS = 20.0
FIELDS = (
    "id type cursor createdAt imapServer emailId folder fromFolder toFolder flags seen flagged answered "
    "payload email { id subject folder seen flagged }"
)
QUERY = f"subscription($s: ID, $t: [EventType!]) {{ emailChanges(imapServer: $s, types: $t) {{ {FIELDS} }} }}"


def _next(socket, seconds: float = WAIT_SECONDS) -> dict:
    """The next frame; the test fails (instead of hanging) when none comes in time."""

    async def receive() -> dict:
        with anyio.fail_after(seconds):
            return await socket._send_rx.receive()

    message = socket.portal.call(receive)
    socket._raise_on_close(message)
    return json.loads(message["text"])


def _subscribe(socket, operation: str, owner_id: int, **variables) -> None:
    """Start emailChanges and wait until it listens, so no later commit is missed."""
    listening = pubsub.bus().subscriber_count(pubsub.events_channel(owner_id))
    socket.send_json(
        {"id": operation, "type": "subscribe", "payload": {"query": QUERY, "variables": variables}}
    )
    deadline = time.monotonic() + WAIT_SECONDS
    while pubsub.bus().subscriber_count(pubsub.events_channel(owner_id)) == listening:
        assert time.monotonic() < deadline, "the subscription never started listening"
        time.sleep(0.02)


def _until_sync_completed(socket, *operations: str) -> dict[str, list[dict]]:
    """Each operation's events up to and including its SYNC_COMPLETED (the last event of a run)."""
    events: dict[str, list[dict]] = {operation: [] for operation in operations}
    waiting = set(operations)
    while waiting:
        frame = _next(socket)
        assert frame["type"] == "next", frame
        event = frame["payload"]["data"]["emailChanges"]
        events[frame["id"]].append(event)
        if event["type"] == "SYNC_COMPLETED":
            waiting.discard(frame["id"])
    return events


def _only(events: list[dict], type: str) -> dict:
    """The single event of a type."""
    [event] = [event for event in events if event["type"] == type]
    return event


@pytest.fixture()
def socket_of(client):
    """Factory: an acknowledged websocket for a token, closed after the test."""
    opened = []

    def factory(token: str):
        ws, socket = _open(client, payload={"Authorization": f"Token {token}"})
        opened.append(ws)
        return socket

    yield factory
    for ws in opened:
        ws.__exit__(None, None, None)


@pytest.fixture()
def other_mirror(database: str, dovecot, make_user) -> Mirror:
    """A second user with a mailbox of their own."""
    mail_user = dovecot.add_user()
    username, _, token = make_user()
    data = validate_server(
        {
            "name": f"mailbox of {mail_user}",
            "host": dovecot.host,
            "port": dovecot.port,
            "username": mail_user,
            "password": "secret",
            "use_ssl": False,
        }
    )
    with session_scope() as session:
        owner = crud_users.get_user_by_username(session, username=username)
        server = crud_servers.create_server(session, owner_id=owner.id, data=data)
        return Mirror(dovecot, mail_user, owner.id, token, server.id)


def test_new_mail_is_email_received_with_its_email(mirror, socket_of) -> None:
    mirror.deliver(make_message(subject="old news"))
    assert mirror.sync().status == "success"  # the first sync announces no mail
    socket = socket_of(mirror.token)
    _subscribe(socket, "1", mirror.owner_id)
    mirror.deliver(make_message(subject="fresh news"))
    assert mirror.sync().messages_new == 1

    events = _until_sync_completed(socket, "1")["1"]
    assert [event["type"] for event in events] == ["EMAIL_RECEIVED", "SYNC_COMPLETED"]
    received = events[0]
    [email] = mirror.emails(subject="fresh news")
    assert received["id"].startswith("evt_")
    assert received["emailId"] == str(email.id) == received["email"]["id"]
    assert received["email"]["subject"] == "fresh news"
    assert (received["folder"], received["imapServer"]) == ("INBOX", str(mirror.server_id))
    assert received["payload"]["subject"] == "fresh news"
    assert received["payload"]["cursor"] == received["cursor"]
    # The same events as the outbox holds, which webhooks send.
    with session_scope() as session:
        outbox = crud_events.list_events(session, owner_id=mirror.owner_id)
    assert [event["id"] for event in events] == [row.id for row in outbox[-2:]]
    assert events[1]["emailId"] is None and events[1]["email"] is None


def test_a_flag_change_is_email_updated(mirror, socket_of) -> None:
    mirror.deliver(make_message(subject="keep"))
    mirror.sync()
    [email] = mirror.emails()
    socket = socket_of(mirror.token)
    _subscribe(socket, "1", mirror.owner_id)
    with mirror.imap() as imap:
        imap.add_flags(uids_of(imap, "INBOX", ["keep"]), [b"\\Seen", b"\\Flagged"])
    mirror.sync()

    updated = _only(_until_sync_completed(socket, "1")["1"], "EMAIL_UPDATED")
    assert updated["emailId"] == str(email.id)
    assert (updated["folder"], updated["seen"], updated["flagged"], updated["answered"]) == (
        "INBOX",
        True,
        True,
        False,
    )
    assert set(updated["flags"]) == {"\\Seen", "\\Flagged"}
    assert updated["email"] == {
        "id": str(email.id),
        "subject": "keep",
        "folder": "INBOX",
        "seen": True,
        "flagged": True,
    }


def test_a_move_is_email_moved_keeping_the_id(mirror, socket_of) -> None:
    mirror.deliver(make_message(subject="mover"))
    with mirror.imap() as imap:
        imap.create_folder("Archive")
    mirror.sync()
    [email] = mirror.emails()
    socket = socket_of(mirror.token)
    _subscribe(socket, "1", mirror.owner_id, s=str(mirror.server_id))
    with mirror.imap() as imap:
        imap.move(uids_of(imap, "INBOX", ["mover"]), "Archive")
    assert mirror.sync().status == "success"

    moved = _only(_until_sync_completed(socket, "1")["1"], "EMAIL_MOVED")
    assert (moved["fromFolder"], moved["toFolder"], moved["folder"]) == ("INBOX", "Archive", None)
    assert moved["emailId"] == str(email.id)
    assert moved["email"]["id"] == str(email.id) and moved["email"]["folder"] == "Archive"


def test_types_filter_sends_only_the_types_asked(mirror, socket_of) -> None:
    mirror.deliver(make_message(subject="a"))
    mirror.deliver(make_message(subject="b"))
    with mirror.imap() as imap:
        imap.create_folder("Archive")
    mirror.sync()
    socket = socket_of(mirror.token)
    _subscribe(socket, "all", mirror.owner_id)
    _subscribe(socket, "some", mirror.owner_id, t=["EMAIL_MOVED", "SYNC_COMPLETED"])
    with mirror.imap() as imap:
        imap.add_flags(uids_of(imap, "INBOX", ["a"]), [b"\\Seen"])
        imap.move(uids_of(imap, "INBOX", ["b"]), "Archive")
    mirror.deliver(make_message(subject="c"))
    assert mirror.sync().status == "success"

    events = _until_sync_completed(socket, "all", "some")
    assert {"EMAIL_UPDATED", "EMAIL_MOVED", "EMAIL_RECEIVED"} <= {event["type"] for event in events["all"]}
    assert [event["type"] for event in events["some"]] == ["EMAIL_MOVED", "SYNC_COMPLETED"]
    assert events["some"][0]["id"] == _only(events["all"], "EMAIL_MOVED")["id"]


def test_another_users_events_never_arrive(mirror, other_mirror, socket_of) -> None:
    mirror.deliver(make_message(subject="mine"))
    mirror.sync()
    socket = socket_of(other_mirror.token)
    _subscribe(socket, "1", other_mirror.owner_id)
    mirror.deliver(make_message(subject="still mine"))
    assert mirror.sync().messages_new == 1  # the first user's events, all committed...
    other_mirror.deliver(make_message(subject="theirs"))
    other_mirror.sync()  # ...before any of the second user's

    events = _until_sync_completed(socket, "1")["1"]
    assert [event["type"] for event in events] == ["SERVER_INITIAL_SYNC_COMPLETED", "SYNC_COMPLETED"]
    assert {event["imapServer"] for event in events} == {str(other_mirror.server_id)}


@pytest.mark.parametrize("server", ["foreign", "999999", "not-a-number"])
def test_an_unknown_or_foreign_server_is_refused(server, mirror, other_mirror, socket_of) -> None:
    socket = socket_of(other_mirror.token)
    variables = {"s": str(mirror.server_id) if server == "foreign" else server}
    socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": QUERY, "variables": variables}})
    frame = _next(socket)
    assert frame["id"] == "1"
    assert frame["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Nothing is left listening for the refused operation.
    deadline = time.monotonic() + WAIT_SECONDS
    while pubsub.bus().subscriber_count(pubsub.events_channel(other_mirror.owner_id)):
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_an_anonymous_socket_is_refused(client, mirror) -> None:
    ws, socket = _open(client)
    try:
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": QUERY, "variables": {}}})
        assert _next(socket)["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        ws.__exit__(None, None, None)
