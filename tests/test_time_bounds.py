"""Every request has a time bound (waited syncs excepted), and a stop signal stops the server mid-request."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imap2api.config import settings
from imap2api.db import get_engine

SYNC = "mutation($id: ID!) { syncImapServer(id: $id, wait: true) { id status } }"


class SilentServer:
    """A loopback TCP service that accepts connections and never says a word (an IMAP server hung)."""

    def __init__(self) -> None:
        self.connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self._listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        """Hang up on everyone."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture()
def silent():
    """A hung IMAP server."""
    server = SilentServer()
    yield server
    server.close()


def _wait_until(condition, what: str, seconds: float = 30) -> None:
    """Poll ``condition`` until it holds (a liveness bound, not a timing claim)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)


@contextlib.contextmanager
def _database_locked(database: str) -> Iterator[None]:
    """Hold a write lock on imap_servers, as a long transaction elsewhere would."""
    if database == "sqlite":
        connection = sqlite3.connect(settings.sqlalchemy_url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    with get_engine().connect() as connection:
        connection.exec_driver_sql("LOCK TABLE imap_servers IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()


def _no_sync_under_way() -> bool:
    """Whether no sync run is queued or running (the app's start-up re-queues earlier tests' runs)."""
    with get_engine().connect() as connection:
        active = connection.exec_driver_sql(
            "SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')"
        ).scalar()
    return not active


def test_a_request_past_its_time_bound_gets_a_503(client, auth, database, monkeypatch) -> None:
    monkeypatch.setattr(settings, "request_timeout_seconds", 1.0)
    assert client.get("/api/imap-servers/", headers=auth).status_code == 200  # token use recorded beforehand
    # Runs that earlier tests left queued would block on the lock below, each holding a pooled
    # connection, until the answer that must come had none: let them end first (a while at most).
    settled = time.monotonic() + 10
    while not _no_sync_under_way() and time.monotonic() < settled:
        time.sleep(0.05)
    server = {"name": "Stuck", "host": "mail.example.com", "username": "u", "password": "p"}
    with _database_locked(database):
        # Without a bound this waited for the lock (30 s on SQLite, for ever on PostgreSQL).
        stuck = client.post("/api/imap-servers/", json=server, headers=auth)
        assert stuck.status_code == 503
        assert stuck.json() == {"detail": "Request timed out: no answer within 1 seconds."}
        # Meanwhile, other requests are answered.
        me = client.post("/graphql", json={"query": "{ me { id } }"}, headers=auth)
        assert me.json()["data"]["me"]["id"]

    # The database work handed over before the deadline still completes; nothing is half-written.
    def inserted() -> bool:
        return client.get("/api/imap-servers/", headers=auth).json()["count"] == 1

    _wait_until(inserted, "the late insert")


def _hung_server(client, auth, silent: SilentServer) -> int:
    """An IMAP server of the caller's at the silent address."""
    body = {
        "name": "Hung",
        "host": "127.0.0.1",
        "port": silent.port,
        "username": "u",
        "password": "p",
        "use_ssl": True,
    }
    response = client.post("/api/imap-servers/", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_waited_syncs_may_wait_past_the_request_bound(client, auth, silent, monkeypatch) -> None:
    monkeypatch.setattr(settings, "request_timeout_seconds", 1.0)
    monkeypatch.setattr(settings, "sync_wait_timeout_seconds", 2.5)
    monkeypatch.setattr(settings, "imap_timeout_seconds", 120.0)  # the run hangs until the server hangs up
    server_id = _hung_server(client, auth, silent)
    rest = client.post(f"/api/imap-servers/{server_id}/sync/", headers=auth)
    assert rest.status_code == 202 and rest.json()["message"] == "Email sync still running"
    variables = {"id": server_id}
    graphql = client.post("/graphql", json={"query": SYNC, "variables": variables}, headers=auth).json()
    assert graphql["data"]["syncImapServer"]["status"] in ("QUEUED", "RUNNING")
    silent.close()
    run = "query($id: ID!) { syncRun(id: $id) { status } }"

    def finished() -> bool:
        body = client.post(
            "/graphql", json={"query": run, "variables": {"id": rest.json()["sync_run"]}}, headers=auth
        ).json()
        return body["data"]["syncRun"]["status"] == "ERROR"

    _wait_until(finished, "the sync against the hung server to time out")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_stops_serve_mid_request(tmp_path: Path, silent) -> None:
    port, url = _free_port(), ""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
    env.update(
        {
            "IMAP2API_DATA_DIR": str(tmp_path / "data"),
            "IMAP2API_SCHEDULER_ENABLED": "false",
            "IMAP2API_SHUTDOWN_TIMEOUT_SECONDS": "2",
            "IMAP2API_IMAP_TIMEOUT_SECONDS": "120",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "createuser", "ann", "--password", "password-1"],
        env=env,
        check=True,
        capture_output=True,
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "imap2api.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_until(up, "serve to start")
        login = httpx.post(f"{url}/api-token-auth/", json={"username": "ann", "password": "password-1"})
        auth = {"Authorization": f"Token {login.json()['token']}"}
        server = httpx.post(
            f"{url}/api/imap-servers/",
            headers=auth,
            json={
                "name": "Hung",
                "host": "127.0.0.1",
                "port": silent.port,
                "username": "u",
                "password": "p",
            },
        ).json()

        def waited_sync() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{url}/api/imap-servers/{server['id']}/sync/", headers=auth, timeout=120)

        threading.Thread(target=waited_sync, daemon=True).start()
        # In flight: the worker is connected to the hung server, the request waits for the run.
        _wait_until(lambda: len(silent.connections) > 0, "the sync to reach the IMAP server")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)  # a liveness bound: the old server waited for the request for ever
        except subprocess.TimeoutExpired:
            output = (tmp_path / "serve.log").read_text()
            pytest.fail(f"imap2api serve was still running 20 s after SIGTERM:\n{output}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
