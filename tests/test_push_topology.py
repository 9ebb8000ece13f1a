"""Push in the scaled topology: one `imap2api serve` and two `imap2api worker` processes on PostgreSQL and
Redis. Each server is watched by exactly one worker; kill that worker outright and the other takes the
watch over once its lease lapses, and mail still arrives."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from tests.support.messages import make_message
from tests.support.serve import add_imap_server, free_port
from tests.support.services import (
    POSTGRES_ADMIN_URL,
    REDIS_TEST_URL,
    create_postgres_database,
    delete_redis_keys,
    drop_postgres_database,
    require_service,
)
from tests.support.webhook_checks import wait_until

LEASE_SECONDS = 3
WAIT_SECONDS = 60.0


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """An imap2api command in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "imap2api.cli", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _end(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Signal the process group and reap it (killed outright if it lingers)."""
    if process.poll() is None:
        os.killpg(process.pid, signum)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Deployment:
    """The processes and a direct connection to their database."""

    def __init__(self, api: str, workers: list[subprocess.Popen], database_url: str, logs: Path) -> None:
        self.api = api
        self.workers = workers
        self.engine = sqlalchemy.create_engine(database_url)
        self.logs = logs

    def watch_owner(self, server_id: int) -> str | None:
        """The holder of a server's watch lease (host:pid:token)."""
        with self.engine.connect() as connection:
            return connection.execute(
                sqlalchemy.text("SELECT watch_owner FROM imap_servers WHERE id = :id"), {"id": server_id}
            ).scalar()

    def worker_of(self, holder: str) -> subprocess.Popen:
        """The `imap2api worker` whose process group the holder's process belongs to."""
        pid = int(holder.split(":")[1])
        group = os.getpgid(pid)
        return next(worker for worker in self.workers if worker.pid == group)

    def subjects(self, server_id: int) -> set[str]:
        """Subjects mirrored for the server."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT subject FROM emails WHERE imap_server_id = :id"), {"id": server_id}
            )
            return {row[0] for row in rows}

    def received(self, server_id: int) -> int:
        """How many email.received events the server has."""
        with self.engine.connect() as connection:
            return connection.execute(
                sqlalchemy.text(
                    "SELECT count(*) FROM events WHERE imap_server_id = :id AND type = 'email.received'"
                ),
                {"id": server_id},
            ).scalar_one()


@pytest.fixture()
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """`imap2api serve` (API only) and two `imap2api worker` processes watching, on a fresh database."""
    require_service("postgresql", POSTGRES_ADMIN_URL)
    require_service("redis", REDIS_TEST_URL)
    name = f"imap2api_push_{secrets.token_hex(4)}"
    url = create_postgres_database(name)
    env = {
        **os.environ,  # the test session's settings (the Dovecot fixture's CA among them), then ours
        **{
            "IMAP2API_DATA_DIR": str(tmp_path / "data"),
            "IMAP2API_DATABASE_URL": url,
            "IMAP2API_REDIS_URL": REDIS_TEST_URL,
            "IMAP2API_REDIS_PREFIX": f"imap2api-test-{secrets.token_hex(6)}",
            "IMAP2API_SECRET_KEY": "push-topology-" + secrets.token_hex(8),
            "IMAP2API_SCHEDULER_ENABLED": "false",
            "IMAP2API_WORKER_PROCESSES": "1",
            "IMAP2API_WATCH_ENABLED": "true",
            "IMAP2API_WATCH_LEASE_SECONDS": str(LEASE_SECONDS),
            # The killed worker may hold a push sync's sync lease too: it must lapse within the test.
            "IMAP2API_SYNC_LEASE_SECONDS": "5",
        },
    }
    migrated = subprocess.run([sys.executable, "-m", "imap2api.cli", "migrate"], env=env, capture_output=True)
    assert migrated.returncode == 0, migrated.stderr.decode()[-2000:]
    subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "createuser", "ops", "--password", "password-1"],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    api = _start(["serve", "--port", str(port), "--no-migrate"], env, tmp_path / "api.log")
    workers = [_start(["worker"], env, tmp_path / f"worker-{n}.log") for n in range(2)]
    base = f"http://127.0.0.1:{port}"
    deployment = Deployment(base, workers, url, tmp_path)
    try:
        wait_until(timeout=WAIT_SECONDS, what="the API answers", condition=lambda: _answers(base + "/readyz"))
        yield deployment
    finally:
        for process in [api, *workers]:
            _end(process)
        deployment.engine.dispose()
        delete_redis_keys(REDIS_TEST_URL, env["IMAP2API_REDIS_PREFIX"])
        drop_postgres_database(name)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_workers_watch_moves_to_the_other(deployment: Deployment, dovecot) -> None:
    api = deployment.api
    token = httpx.post(api + "/api-token-auth/", json={"username": "ops", "password": "password-1"}).json()[
        "token"
    ]
    headers = {"Authorization": f"Token {token}"}
    mail_user = dovecot.add_user()
    server_id = add_imap_server(api, headers, dovecot, mail_user)
    synced = httpx.post(f"{api}/api/imap-servers/{server_id}/sync/", headers=headers, timeout=60)
    assert synced.status_code == 200, synced.text

    holder = str(
        wait_until(
            timeout=WAIT_SECONDS,
            what="a worker watches the server",
            condition=lambda: deployment.watch_owner(server_id),
        )
    )
    with dovecot.client(mail_user) as client:
        client.append("INBOX", make_message(subject="watched by the first"))
    wait_until(
        timeout=WAIT_SECONDS,
        what="the first worker's push",
        condition=lambda: "watched by the first" in deployment.subjects(server_id),
    )

    victim = deployment.worker_of(holder)
    os.killpg(victim.pid, signal.SIGKILL)  # no chance to give the lease back
    victim.wait()
    with dovecot.client(mail_user) as client:
        client.append("INBOX", make_message(subject="sent while its watcher died"))
    taken = str(
        wait_until(
            timeout=WAIT_SECONDS,
            what="the other worker takes the watch over",
            condition=lambda: (owner := deployment.watch_owner(server_id)) not in (None, holder) and owner,
        )
    )
    assert deployment.worker_of(taken) is not victim
    wait_until(
        timeout=WAIT_SECONDS,
        what="mail still arrives",
        condition=lambda: "sent while its watcher died" in deployment.subjects(server_id),
    )
    with dovecot.client(mail_user) as client:
        client.append("INBOX", make_message(subject="watched by the second"))
    wait_until(
        timeout=WAIT_SECONDS,
        what="the second worker's push",
        condition=lambda: "watched by the second" in deployment.subjects(server_id),
    )
    assert deployment.received(server_id) == 3  # each once: no double announcement across the take-over
    logs = "".join(path.read_text(errors="replace") for path in deployment.logs.glob("*.log"))
    assert "Traceback" not in logs, logs[-3000:]
