"""Runs outlive the workers that die under them: a crashed server, a lapsed lease, a deleted server.

Nobody's request is ever answered with the failure of a run that died before it was made, a worker
only ever gives back its own lease, and a server deleted mid-sync stops its sync without a crash.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta
from functools import partial

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from imap2api.app import create_app
from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.models import ImapServer, utcnow
from imap2api.sync.engine import holder_name, run_sync
from tests.support.messages import make_message
from tests.support.serve import add_imap_server, kill, start_serve
from tests.support.webhook_checks import wait_until


def _run(run_id: int):  # noqa: ANN202
    with session_scope() as session:
        return crud_runs.get_run(session, run_id=run_id)


def _lease(server_id: int) -> str | None:
    with session_scope() as session:
        server = session.get(ImapServer, server_id)
        assert server is not None
        return server.lease_owner


def _dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _running_run(server_id: int, *, holder: str, lease_seconds: int) -> int:
    """A run left ``running`` by ``holder``, whose lease ends in ``lease_seconds`` (negative: lapsed)."""
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
        run_id = crud_runs.start_run(session, server=server, trigger="manual")[0].id or 0
        assert crud_runs.acquire_lease(session, server_id=server_id, holder=holder, seconds=lease_seconds)
        crud_runs.update_run(session, run_id=run_id, status="running", started_at=utcnow())
    return run_id


def _progress(url: str, headers: dict[str, str], run_id: int) -> int:
    """How many messages the run has stored, read through GraphQL."""
    query = "query($id: ID!) { syncRun(id: $id) { progressDone } }"
    answer = httpx.post(f"{url}/graphql", headers=headers, json={"query": query, "variables": {"id": run_id}})
    return answer.json()["data"]["syncRun"]["progressDone"]


def test_a_server_killed_ten_times_mid_sync_syncs_exactly_on_the_next_request(tmp_path, dovecot) -> None:
    total = 3000
    mail_user = dovecot.add_user()
    dovecot.add_messages(mail_user, "INBOX", [make_message(subject=f"chaos {n}") for n in range(total)])
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
    subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "createuser", "chaos", "--password", "password-1"],
        env={**env, "IMAP2API_DATA_DIR": str(tmp_path / "data")},
        check=True,
        capture_output=True,
    )
    # Small batches: every life of the server commits a few of them before it is killed.
    settings = {"imap_ca_file": str(dovecot.ca_cert_path), "sync_batch_messages": "25"}
    server_id = None
    runs: list[int] = []
    for _ in range(10):
        process, url = start_serve(tmp_path, **settings)
        try:
            token = httpx.post(
                f"{url}/api-token-auth/", json={"username": "chaos", "password": "password-1"}
            ).json()
            headers = {"Authorization": f"Token {token['token']}"}
            if server_id is None:
                server_id = add_imap_server(url, headers, dovecot, mail_user, "chaos")
            started = httpx.post(f"{url}/api/imap-servers/{server_id}/sync/?wait=false", headers=headers)
            assert started.status_code == 202, started.text
            run_id = started.json()["sync_run"]
            # The run the previous life died in was failed when this one started: this is a new run.
            assert run_id not in runs
            runs.append(run_id)
            wait_until(partial(_progress, url, headers, run_id), timeout=60, what="the sync to store a batch")
        finally:
            kill(process)

    process, url = start_serve(tmp_path, **settings)
    try:
        done = httpx.post(f"{url}/api/imap-servers/{server_id}/sync/", headers=headers, timeout=300)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "success" and done.json()["sync_run"] not in runs
        history = httpx.post(
            f"{url}/graphql",
            headers=headers,
            json={
                "query": "query($s: ID!) { syncRuns(imapServer: $s, limit: 20) { id status errorCode } }",
                "variables": {"s": server_id},
            },
        ).json()["data"]["syncRuns"]
    finally:
        kill(process)
    assert [(int(run["id"]), run["status"], run["errorCode"]) for run in history[1:]] == [
        (run_id, "ERROR", "WORKER_LOST") for run_id in reversed(runs)
    ]
    database = sqlite3.connect(tmp_path / "data" / "imap2api.sqlite3")
    try:
        stored = database.execute(
            "SELECT count(*), count(DISTINCT uid) FROM emails WHERE imap_server_id = ?", (server_id,)
        ).fetchone()
    finally:
        database.close()
    assert stored == (total, total)
    assert b"Traceback" not in (tmp_path / "serve.log").read_bytes()


def test_a_starting_server_fails_the_runs_of_its_dead_process_and_requeues_its_queued_runs(
    database, mirror
) -> None:
    mirror.deliver(make_message(subject="waiting"))
    dead = _running_run(mirror.server_id, holder=f"{socket.gethostname()}:{_dead_pid()}:1", lease_seconds=600)
    with session_scope() as session:
        second = crud_servers.create_server(
            session,
            owner_id=mirror.owner_id,
            data={
                "name": "second",
                "host": mirror.dovecot.host,
                "port": mirror.dovecot.port,
                "username": mirror.mail_user,
                "password": "secret",
                "use_ssl": False,
            },
        )
        # Queued by a process that died: its message lived in that process's memory.
        queued = crud_runs.start_run(session, server=second, trigger="manual")[0].id or 0

    with TestClient(create_app(), base_url="http://testserver") as client:
        lost = _run(dead)
        assert (lost.status, lost.error_code) == ("error", "WORKER_LOST") and _lease(mirror.server_id) is None
        synced = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
        assert synced.status_code == 200 and synced.json()["messages_new"] == 1, synced.text
        wait_until(lambda: _run(queued).status not in crud_runs.ACTIVE, timeout=60, what="the requeued run")
        assert _run(queued).status == "success"


def test_a_request_takes_over_from_a_worker_whose_lease_lapsed(client, mirror, monkeypatch) -> None:
    # Were the request to join the dead run, it would wait this long and answer "running".
    monkeypatch.setattr(settings, "sync_wait_timeout_seconds", 30.0)
    mirror.deliver(make_message(subject="after the crash"))
    dead = _running_run(mirror.server_id, holder="a-host-that-died:7:1", lease_seconds=-1)
    response = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success" and body["sync_run"] != dead and body["messages_new"] == 1
    assert (_run(dead).status, _run(dead).error_code) == ("error", "WORKER_LOST")
    assert _lease(mirror.server_id) is None


def test_a_lapsed_holder_finishing_after_a_takeover_leaves_the_new_holders_lease(
    mirror, monkeypatch, caplog
) -> None:
    total = 30
    monkeypatch.setattr(settings, "sync_batch_messages", 10)
    mirror.configure(folders_to_sync="INBOX")
    mirror.dovecot.add_messages(
        mirror.mail_user, "INBOX", [make_message(subject=f"race {n}") for n in range(total)]
    )
    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=None, server_id=mirror.server_id)
        run_id = crud_runs.start_run(session, server=server, trigger="manual")[0].id or 0
    second: dict = {}
    second_holds, first_done = threading.Event(), threading.Event()

    def second_worker() -> None:
        # Its first step, as run_sync's: take the lease, which has lapsed; then finish the run.
        second["holder"] = holder = holder_name()
        with session_scope() as session:
            second["took"] = crud_runs.acquire_lease(
                session, server_id=mirror.server_id, holder=holder, seconds=settings.sync_lease_seconds
            )
        second_holds.set()
        first_done.wait(60)
        second["run"] = run_sync(run_id)

    worker = threading.Thread(target=second_worker)

    def first_progress(done: int, _total: int) -> None:
        # After the first worker's last write (every message stored, the folder done), before its end.
        if done == total and not second_holds.is_set() and _run(run_id).folders_synced == 1:
            # It stalls past its lease there; the second worker takes the server over.
            with session_scope() as session:
                session.exec(
                    update(ImapServer)
                    .where(ImapServer.id == mirror.server_id)  # type: ignore[call-overload]
                    .values(lease_expires_at=utcnow() - timedelta(seconds=1))
                )
            worker.start()
            assert second_holds.wait(60)

    try:
        first = run_sync(run_id, on_progress=first_progress)
        lease_after_first = _lease(mirror.server_id)
    finally:
        first_done.set()
        if worker.ident is not None:
            worker.join(60)
    assert second["took"] and lease_after_first == second["holder"] != holder_name()
    # The run is the second worker's now: the first, at its end, left the outcome to it.
    assert first.status == "running"
    assert any("its outcome is left to that worker" in record.getMessage() for record in caplog.records)
    assert second["run"].status == "success" and _lease(mirror.server_id) is None
    emails = mirror.emails()
    assert len(emails) == total and len({email.uid for email in emails}) == total
    assert len(mirror.events("sync.completed")) == 1


def test_deleting_a_server_mid_sync_stops_the_sync_quietly_and_leaves_nothing(
    database, client, mirror, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(settings, "sync_batch_messages", 10)
    mirror.dovecot.add_messages(
        mirror.mail_user,
        "INBOX",
        [
            make_message(subject=f"doomed {n}", attachments=[("a.txt", "text/plain", b"attached")])
            for n in range(1500)
        ],
    )
    hook = client.post(
        "/api/webhooks/",
        headers=mirror.headers,
        json={"url": "https://hooks.example.com/doomed", "imap_server": mirror.server_id},
    )
    assert hook.status_code == 201, hook.text
    caplog.set_level(logging.INFO)
    started = client.post(f"/api/imap-servers/{mirror.server_id}/sync/?wait=false", headers=mirror.headers)
    run_id = started.json()["sync_run"]
    wait_until(lambda: _run(run_id).progress_done > 0, timeout=60, what="the sync to store a batch")
    deleted = client.delete(f"/api/imap-servers/{mirror.server_id}/", headers=mirror.headers)
    assert deleted.status_code == 204
    wait_until(
        lambda: any("was deleted" in record.getMessage() for record in caplog.records),
        timeout=60,
        what="the sync to notice",
    )

    stopped = [record for record in caplog.records if "was deleted" in record.getMessage()]
    assert [record.levelno for record in stopped] == [logging.INFO]
    loud = [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]
    assert loud == [], [record.getMessage() for record in loud]
    with session_scope() as session:
        left = {
            table: session.execute(
                text(f"SELECT count(*) FROM {table} WHERE imap_server_id = :s"), {"s": mirror.server_id}
            ).scalar_one()
            for table in ("folders", "emails", "thread_keys", "sync_runs", "events", "webhooks")
        }
        left["attachments"] = session.execute(
            text("SELECT count(*) FROM attachments WHERE email_id NOT IN (SELECT id FROM emails)")
        ).scalar_one()
        left["imap_servers"] = session.execute(
            text("SELECT count(*) FROM imap_servers WHERE id = :s"), {"s": mirror.server_id}
        ).scalar_one()
        if database == "sqlite":
            queue = "SELECT count(*) FROM emails_fts_pending WHERE email_id NOT IN (SELECT id FROM emails)"
            left["search queue"] = session.execute(text(queue)).scalar_one()
    assert left == dict.fromkeys(left, 0)
