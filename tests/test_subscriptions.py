"""GraphQL subscriptions over websockets (graphql-transport-ws), fed by the sync engine."""

from __future__ import annotations

import threading
import time

from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.sync.engine import run_sync
from tests.support.messages import make_message

PROTOCOL = ["graphql-transport-ws"]


def _open(client, headers: dict[str, str] | None = None, payload: dict | None = None):
    ws = client.websocket_connect("/graphql", subprotocols=PROTOCOL, headers=headers or {})
    socket = ws.__enter__()
    socket.send_json({"type": "connection_init", "payload": payload or {}})
    assert socket.receive_json()["type"] == "connection_ack"
    return ws, socket


def test_email_received_hears_new_mail_only(client, mirror) -> None:
    mirror.deliver(make_message(subject="old news"))
    mirror.sync()
    ws, socket = _open(client, payload={"Authorization": f"Token {mirror.token}"})
    try:
        socket.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($s: ID!) {"
                    " emailReceived(imapServer: $s) { subject folder threadCount } }",
                    "variables": {"s": str(mirror.server_id)},
                },
            }
        )
        time.sleep(0.3)  # let the server register the subscription before mail arrives
        mirror.deliver(make_message(subject="fresh news"))
        assert mirror.sync().messages_new == 1
        message = socket.receive_json()
        assert message == {
            "id": "1",
            "type": "next",
            "payload": {
                "data": {"emailReceived": {"subject": "fresh news", "folder": "INBOX", "threadCount": 1}}
            },
        }
    finally:
        ws.__exit__(None, None, None)


def test_sync_progress_until_done(client, mirror) -> None:

    mirror.dovecot.add_messages(mirror.mail_user, "INBOX", [make_message(subject=f"n{n}") for n in range(30)])
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=mirror.owner_id, server_id=mirror.server_id)
        run, _ = crud_runs.start_run(session, server=server, trigger="manual")
    ws, socket = _open(client, headers=mirror.headers)
    try:
        socket.send_json(
            {
                "id": "p",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($r: ID!) {"
                    " syncProgress(runId: $r) { status progressDone progressTotal "
                    "foldersSynced } }",
                    "variables": {"r": str(run.id)},
                },
            }
        )
        first = socket.receive_json()["payload"]["data"]["syncProgress"]
        assert first["status"] == "QUEUED"
        worker = threading.Thread(target=run_sync, args=(run.id,))
        worker.start()
        states = [first]
        while True:
            message = socket.receive_json()
            if message["type"] == "complete":
                break
            states.append(message["payload"]["data"]["syncProgress"])
        worker.join()
    finally:
        ws.__exit__(None, None, None)
    assert states[-1] == {"status": "SUCCESS", "progressDone": 30, "progressTotal": 30, "foldersSynced": 4}
    done = [state["progressDone"] for state in states]
    assert done == sorted(done)
    # A client can draw a bar: every frame has its total, and folders count up as they finish.
    assert all(state["progressDone"] <= state["progressTotal"] for state in states)
    folders = [state["foldersSynced"] for state in states]
    assert folders == sorted(folders)


def test_subscriptions_need_a_token_and_ownership(client, mirror, auth) -> None:
    ws, socket = _open(client)
    try:
        socket.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($s: ID!) { emailReceived(imapServer: $s) { id } }",
                    "variables": {"s": str(mirror.server_id)},
                },
            }
        )
        message = socket.receive_json()
        assert message["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        ws.__exit__(None, None, None)
    ws, socket = _open(client, headers=auth)
    try:
        socket.send_json(
            {
                "id": "2",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($s: ID!) { emailReceived(imapServer: $s) { id } }",
                    "variables": {"s": str(mirror.server_id)},
                },
            }
        )
        message = socket.receive_json()
        assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        ws.__exit__(None, None, None)
