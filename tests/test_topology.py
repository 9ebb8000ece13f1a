"""The scaled topology from processes on this machine: two `imap2api serve` and two `imap2api worker`
processes sharing PostgreSQL and Redis, as docker-compose.yml runs them."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.messages import make_message
from tests.support.serve import add_imap_server
from tests.support.services import (
    POSTGRES_ADMIN_URL,
    REDIS_TEST_URL,
    create_postgres_database,
    delete_redis_keys,
    drop_postgres_database,
    redis_keys,
    require_service,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imap2api.cli", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Topology:
    """Handles on the running processes."""

    def __init__(self, apis: list[str], logs: Path, redis_prefix: str) -> None:
        self.apis = apis
        self.logs = logs
        self.redis_prefix = redis_prefix

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))

    def token(self, api: str, username: str) -> dict[str, str]:
        token = httpx.post(
            api + "/api-token-auth/", json={"username": username, "password": "password-1"}
        ).json()["token"]
        return {"Authorization": f"Token {token}"}


@pytest.fixture(scope="module")
def topology(tmp_path_factory, dovecot) -> Iterator[Topology]:
    """Two API processes and two worker processes on a throw-away PostgreSQL database and Redis."""
    require_service("postgresql", POSTGRES_ADMIN_URL)
    require_service("redis", REDIS_TEST_URL)
    logs = tmp_path_factory.mktemp("topology")
    name = f"imap2api_topology_{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "IMAP2API_DATA_DIR": str(logs / "data"),
        "IMAP2API_DATABASE_URL": create_postgres_database(name),
        "IMAP2API_REDIS_URL": REDIS_TEST_URL,
        # That Redis may be an operator's: our keys live under a prefix of this run only, and only they go.
        "IMAP2API_REDIS_PREFIX": f"imap2api-test-{secrets.token_hex(6)}",
        "IMAP2API_WORKER_PROCESSES": "1",
        "IMAP2API_WORKER_THREADS": "2",
        "IMAP2API_SCHEDULER_ENABLED": "false",
        "IMAP2API_RATE_LIMIT_USER": "1000/hour",
    }
    subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "migrate"], env=env, check=True, capture_output=True
    )
    for username in ("ops", "budget"):
        subprocess.run(
            [sys.executable, "-m", "imap2api.cli", "createuser", username, "--password", "password-1"],
            env=env,
            check=True,
            capture_output=True,
        )
    ports = [_free_port(), _free_port()]
    processes = [
        _start(["serve", "--port", str(port), "--no-migrate"], env, logs / f"api-{port}.log")
        for port in ports
    ]
    processes += [_start(["worker"], env, logs / f"worker-{n}.log") for n in range(2)]
    apis = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for api in apis:
            for _ in range(200):
                try:
                    if httpx.get(api + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        yield Topology(apis, logs, env["IMAP2API_REDIS_PREFIX"])
    finally:
        for process in processes:
            _stop(process)
        delete_redis_keys(REDIS_TEST_URL, env["IMAP2API_REDIS_PREFIX"])
        drop_postgres_database(name)


def test_concurrent_syncs_run_once_per_request(topology, dovecot) -> None:
    headers = topology.token(topology.apis[0], "ops")
    accounts = []
    for number in range(3):
        mail_user = dovecot.add_user()
        dovecot.add_messages(mail_user, "INBOX", [make_message(subject=f"{number}-{n}") for n in range(40)])
        accounts.append(add_imap_server(topology.apis[number % 2], headers, dovecot, mail_user))

    # Every account asked for twice at once, once through each API process.
    requests = [(api, server_id) for server_id in accounts for api in topology.apis]
    with ThreadPoolExecutor(len(requests)) as pool:
        responses = list(
            pool.map(
                lambda item: httpx.post(
                    f"{item[0]}/api/imap-servers/{item[1]}/sync/", headers=headers, timeout=120
                ),
                requests,
            )
        )
    assert all(response.status_code == 200 for response in responses), [r.text for r in responses]
    for server_id in accounts:
        same = [
            r.json()["sync_run"]
            for (api, sid), r in zip(requests, responses, strict=True)
            if sid == server_id
        ]
        assert len(set(same)) == 1, "both requests joined the same run"
        runs = httpx.post(
            topology.apis[0] + "/graphql",
            headers=headers,
            json={
                "query": "query($s: ID!) { syncRuns(imapServer: $s) { status messagesNew } }",
                "variables": {"s": server_id},
            },
        ).json()["data"]["syncRuns"]
        assert runs == [{"status": "SUCCESS", "messagesNew": 40}]
        emails = httpx.get(
            f"{topology.apis[1]}/api/emails/?imap_server={server_id}&page_size=100", headers=headers
        ).json()
        assert emails["count"] == 40 and len({e["message_id"] for e in emails["results"]}) == 40


def test_a_subscriber_on_one_api_hears_a_worker(topology, dovecot) -> None:
    api_a, api_b = topology.apis
    headers = topology.token(api_a, "ops")
    mail_user = dovecot.add_user()
    dovecot.add_message(mail_user, "INBOX", make_message(subject="before"))
    server_id = add_imap_server(api_a, headers, dovecot, mail_user)
    assert (
        httpx.post(f"{api_a}/api/imap-servers/{server_id}/sync/", headers=headers, timeout=60).status_code
        == 200
    )

    with connect(api_b.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": headers["Authorization"]}})
        )
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription($s: ID!) { emailReceived(imapServer: $s) { subject } }",
                        "variables": {"s": str(server_id)},
                    },
                }
            )
        )
        time.sleep(0.5)  # the subscription reaches Redis before the mail does
        dovecot.add_message(mail_user, "INBOX", make_message(subject="after"))
        # Synced through the other API process, by whichever worker takes the job.
        done = httpx.post(f"{api_a}/api/imap-servers/{server_id}/sync/", headers=headers, timeout=60).json()
        assert done["messages_new"] == 1
        message = json.loads(ws.recv(timeout=30))
    assert message["payload"]["data"]["emailReceived"] == {"subject": "after"}


def test_the_rate_limit_budget_is_shared(topology) -> None:
    api_a, api_b = topology.apis
    headers = topology.token(api_a, "budget")
    first = httpx.get(api_a + "/api/emails/", headers=headers)
    second = httpx.get(api_b + "/api/emails/", headers=headers)
    used_a = int(first.headers["X-RateLimit-Remaining"])
    used_b = int(second.headers["X-RateLimit-Remaining"])
    assert used_b == used_a - 1  # the second process saw the first one's request
    assert first.headers["X-RateLimit-Limit"] == second.headers["X-RateLimit-Limit"] == "1000"


def test_redis_keys_live_under_the_prefix_of_the_run(topology) -> None:
    # Rate-limit counters and Dramatiq's keys sit under this run's prefix: the only keys the fixture deletes.
    httpx.get(topology.apis[0] + "/api/emails/")
    keys = redis_keys(REDIS_TEST_URL, topology.redis_prefix)
    assert any(key.startswith(f"{topology.redis_prefix}:throttle:") for key in keys), keys
    assert f"{topology.redis_prefix}:__heartbeats__" in keys, keys  # the workers' Dramatiq broker


def test_no_process_logged_a_crash(topology) -> None:
    log = topology.log_text()
    assert "Traceback" not in log, log[-3000:]
