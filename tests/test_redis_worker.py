"""The scale-out path: `imap2api serve` and `imap2api worker` as separate processes over Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.messages import make_message
from tests.support.services import REDIS_TEST_URL, require_service


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "imap2api.cli", *args], env=env, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture()
def topology(tmp_path: Path, dovecot) -> Iterator[dict]:
    """An API process and a worker process sharing a database and a Redis queue."""
    require_service("redis", REDIS_TEST_URL)
    import redis

    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    port = _free_port()
    env = {
        **os.environ,
        "IMAP2API_DATA_DIR": str(tmp_path / "data"),
        "IMAP2API_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "IMAP2API_REDIS_URL": REDIS_TEST_URL,
        "IMAP2API_WORKER_PROCESSES": "1",
        "IMAP2API_WORKER_THREADS": "2",
        "IMAP2API_SCHEDULER_ENABLED": "false",
    }
    subprocess.run([sys.executable, "-m", "imap2api.cli", "createuser", "ops", "--password", "pw"],
                   env=env, check=True, capture_output=True)
    api = _start(["serve", "--port", str(port)], env, tmp_path / "api.log")
    worker = _start(["worker"], env, tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield {"base": base, "logs": tmp_path}
    finally:
        _stop(api)
        _stop(worker)


def test_sync_through_a_separate_worker(topology, dovecot, user) -> None:
    base = topology["base"]
    for number in range(3):
        dovecot.add_message(user, "INBOX", make_message(subject=f"via redis {number}"))
    token = httpx.post(base + "/api-token-auth/", json={"username": "ops", "password": "pw"}).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    server = httpx.post(base + "/api/imap-servers/", headers=headers, json={
        "name": "worker test", "host": dovecot.host, "port": dovecot.port, "username": user,
        "password": "secret", "use_ssl": False,
    }).json()

    response = httpx.post(f"{base}/api/imap-servers/{server['id']}/sync/", headers=headers, timeout=60)
    logs = "".join(path.read_text(errors="replace") for path in topology["logs"].glob("*.log"))
    assert response.status_code == 200, (response.text, logs)
    assert response.json()["status"] == "success" and response.json()["messages_new"] == 3

    run = httpx.post(base + "/graphql", headers=headers, json={
        "query": "query($id: ID!) { syncRuns(imapServer: $id) { status trigger messagesNew } }",
        "variables": {"id": server["id"]},
    }).json()["data"]["syncRuns"]
    assert run == [{"status": "success", "trigger": "manual", "messagesNew": 3}]


def test_a_subscriber_on_the_api_hears_mail_synced_by_the_worker(topology, dovecot, user) -> None:
    import json

    from websockets.sync.client import connect

    base = topology["base"]
    dovecot.add_message(user, "INBOX", make_message(subject="before"))
    token = httpx.post(base + "/api-token-auth/", json={"username": "ops", "password": "pw"}).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    server = httpx.post(base + "/api/imap-servers/", headers=headers, json={
        "name": "pubsub", "host": dovecot.host, "port": dovecot.port, "username": user,
        "password": "secret", "use_ssl": False,
    }).json()
    sync_url = f"{base}/api/imap-servers/{server['id']}/sync/"
    assert httpx.post(sync_url, headers=headers, timeout=60).status_code == 200

    ws_url = base.replace("http://", "ws://") + "/graphql"
    with connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Token {token}"}}))
        assert json.loads(socket.recv(timeout=10))["type"] == "connection_ack"
        socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($s: ID!) { emailReceived(imapServer: $s) { subject } }",
            "variables": {"s": str(server["id"])}}}))
        time.sleep(0.5)  # the subscription reaches Redis before the mail does
        dovecot.add_message(user, "INBOX", make_message(subject="after"))
        assert httpx.post(sync_url, headers=headers, timeout=60).json()["messages_new"] == 1
        message = json.loads(socket.recv(timeout=30))
    assert message["payload"]["data"]["emailReceived"] == {"subject": "after"}
