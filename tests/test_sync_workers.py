"""Syncs through the workers and the API: waiting, queueing, failing, scheduling, dying mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.workers.scheduler import Scheduler, enqueue_due_syncs
from tests.support.messages import make_message
from tests.support.webhook_checks import wait_until


def test_rest_sync_waits_for_the_embedded_worker(client, mirror) -> None:
    mirror.deliver(make_message(subject="one"))
    response = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success" and body["message"] == "Email sync completed"
    assert body["messages_new"] == 1
    server = client.get(f"/api/imap-servers/{mirror.server_id}/", headers=mirror.headers).json()
    assert server["last_sync"].endswith("Z") and server["last_sync_status"] == "success"


def test_rest_sync_without_waiting_answers_202(client, mirror) -> None:
    mirror.deliver(make_message(subject="later"))
    response = client.post(
        f"/api/v1/imap-servers/{mirror.server_id}/sync/?wait=false", headers=mirror.headers
    )
    assert response.status_code == 202
    run_id = response.json()["sync_run"]
    query = "query($id: ID!) { syncRun(id: $id) { status progressDone progressTotal messagesNew } }"
    for _ in range(100):
        run = client.post(
            "/graphql", json={"query": query, "variables": {"id": run_id}}, headers=mirror.headers
        ).json()["data"]["syncRun"]
        if run["status"] == "SUCCESS":
            break
        time.sleep(0.1)
    assert run == {"status": "SUCCESS", "progressDone": 1, "progressTotal": 1, "messagesNew": 1}


def test_failed_sync_is_a_502_with_the_reason(client, mirror) -> None:
    mirror.configure(password="not-the-password")
    response = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
    assert response.status_code == 502
    body = response.json()
    assert body["status"] == "error" and body["code"] == "IMAP_AUTH_FAILED"
    assert "login failed" in body["message"]
    server = client.get(f"/api/imap-servers/{mirror.server_id}/", headers=mirror.headers).json()
    assert server["last_sync_status"] == "error" and "login failed" in server["last_error"]

    graphql = client.post(
        "/graphql",
        headers=mirror.headers,
        json={
            "query": "mutation($id: ID!) { syncImapServer(id: $id) { status } }",
            "variables": {"id": mirror.server_id},
        },
    ).json()
    assert graphql["errors"][0]["extensions"]["code"] == "IMAP_AUTH_FAILED"


def test_sync_of_someone_elses_server_is_not_found(client, mirror, auth) -> None:
    response = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=auth)
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_the_scheduler_queues_each_due_server_once(mirror) -> None:
    first = enqueue_due_syncs()
    assert mirror.server_id in first
    assert mirror.server_id not in enqueue_due_syncs()  # claimed until its interval passes
    with session_scope() as session:
        runs = crud_runs.list_runs(session, server_id=mirror.server_id)
    assert [(run.trigger, run.status) for run in runs] == [("schedule", "queued")]


def test_a_scheduled_sync_runs_in_its_lane(client, mirror) -> None:
    mirror.deliver(make_message(subject="due"))
    assert mirror.server_id in enqueue_due_syncs()
    with session_scope() as session:
        (run_id,) = [run.id for run in crud_runs.list_runs(session, server_id=mirror.server_id)]

    def finished() -> object:
        with session_scope() as session:
            run = crud_runs.get_run(session, run_id=run_id or 0)
        return run.status not in crud_runs.ACTIVE and run

    run = wait_until(finished, what="the scheduled run")
    assert (run.trigger, run.status, run.messages_new) == ("schedule", "success", 1)
    assert [email.subject for email in mirror.emails()] == ["due"]


def test_logins_use_starttls_on_a_plain_port(mirror) -> None:
    mirror.deliver(make_message(subject="secret"))
    assert mirror.sync().status == "success"
    log = mirror.dovecot.log_path.read_text(errors="replace")
    logins = [line for line in log.splitlines() if f"user=<{mirror.mail_user}>" in line and "Login:" in line]
    assert logins and all("TLS" in line for line in logins)


def test_a_worker_killed_mid_sync_converges_on_the_next_sync(mirror, database, tmp_path) -> None:
    total = 400
    mirror.dovecot.add_messages(
        mirror.mail_user, "INBOX", [make_message(subject=f"bulk {n}", body="x" * 2000) for n in range(total)]
    )
    env = {
        **os.environ,
        "IMAP2API_DATABASE_URL": settings.sqlalchemy_url,
        "IMAP2API_SYNC_BATCH_MESSAGES": "10",
        "IMAP2API_SYNC_LEASE_SECONDS": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "imap2api.cli", "sync", str(mirror.server_id)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        for _ in range(600):
            stored = len(mirror.emails())
            if stored >= 50 or process.poll() is not None:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    stored = len(mirror.emails())
    assert 0 < stored < total, "the sync should have been killed half-way"

    # The dead worker's run is still "running" and shows its progress; its lease lapses.
    with session_scope() as session:
        dead = crud_runs.list_runs(session, server_id=mirror.server_id)[0]
    assert dead.status == "running" and dead.progress_done == stored
    time.sleep(2.1)
    with session_scope() as session:
        assert crud_runs.fail_abandoned_runs(session) == 1

    run = mirror.sync()
    assert run.status == "success" and run.messages_new == total - stored
    emails = mirror.emails()
    assert len(emails) == total and len({email.uid for email in emails}) == total
    assert mirror.events("email.received") == []


def test_the_scheduler_loop_runs_every_task_each_tick_even_after_a_failure(monkeypatch) -> None:
    ran: list[str] = []
    three_ticks = threading.Event()

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("database restarting")

    def healthy() -> None:
        ran.append("healthy")
        if ran.count("healthy") >= 3:
            three_ticks.set()

    scheduler = Scheduler(tick=0.02)
    monkeypatch.setattr(scheduler, "_due_tasks", lambda: [broken, healthy])
    scheduler.start()
    try:
        assert three_ticks.wait(10)
    finally:
        scheduler.stop()
        scheduler.join(5)
    assert not scheduler.is_alive() and ran.count("broken") >= 3
