"""Slow and hung IMAP servers cost a connection, not the service: waits hold no thread, lanes keep
requested syncs apart from scheduled ones, and a run has a time bound."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from imap2api import pubsub
from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud import users as crud_users
from imap2api.db import in_session, run_db, session_scope
from imap2api.models import ImapServer
from imap2api.services import sync
from imap2api.services.principal import Principal, Role
from imap2api.services.sync import wait_for_run
from imap2api.validation import validate_server
from tests.support.hung import HungImapServer
from tests.support.messages import make_message

ME = {"query": "{ me { id } }"}


def _wait_until(condition, what: str, seconds: float = 60) -> None:
    """Poll ``condition`` until it holds (a liveness bound, not a timing claim)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.05)


def _hung_server_of(owner_id: int, hung: HungImapServer) -> int:
    """An IMAP server of ``owner_id`` at the hung address (clear text: the fake speaks no TLS)."""
    data = validate_server(
        {
            "name": f"hung at {hung.stage}",
            "host": hung.host,
            "port": hung.port,
            "username": "u",
            "password": "p",
            "tls_mode": "none",
        }
    )
    with session_scope() as session:
        return crud_servers.create_server(session, owner_id=owner_id, data=data).id


def _owner_id(make_user) -> int:
    """The id of a fresh user."""
    with session_scope() as session:
        return crud_users.get_user_by_username(session, username=make_user()[0]).id


def _active_run_id(server_id: int) -> int | None:
    with session_scope() as session:
        runs = crud_runs.list_runs(session, server_id=server_id, limit=1)
    return runs[0].id if runs and runs[0].status in crud_runs.ACTIVE else None


def _in_thread(call) -> tuple[threading.Thread, list]:
    """Run ``call`` in a daemon thread; its result lands in the returned list."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    return thread, box


def test_a_hundred_waited_syncs_hold_no_thread(client, auth, monkeypatch) -> None:
    monkeypatch.setattr(settings, "imap_timeout_seconds", 120.0)  # the run hangs until the server hangs up
    monkeypatch.setattr(settings, "sync_wait_timeout_seconds", 90.0)  # should this test fail, it ends
    token = auth["Authorization"].split()[1]
    with session_scope() as session:
        owner_id = crud_users.user_for_token(session, key=token).id
    with HungImapServer("connect") as hung:
        server_id = _hung_server_of(owner_id, hung)
        url = f"/api/imap-servers/{server_id}/sync/"
        syncs = [_in_thread(lambda: client.post(url, headers=auth)) for _ in range(100)]
        _wait_until(lambda: _active_run_id(server_id) is not None, "the run to be queued")
        channel = pubsub.run_channel(_active_run_id(server_id) or 0)
        # Every request is waiting on the one run (the old code held a thread per waiting request,
        # more than the 40 of the thread pool every database call shares).
        _wait_until(lambda: pubsub.bus().subscriber_count(channel) == 100, "100 requests waiting on the run")
        assert hung.connections == 1

        me_thread, me = _in_thread(lambda: client.post("/graphql", json=ME, headers=auth))
        me_thread.join(30)  # a liveness bound: the old code answered only when the syncs did
        assert me and me[0].json()["data"]["me"]["id"], "{ me { id } } got no answer"
        assert not any(box for _, box in syncs), "no sync has answered yet: they were all in flight"
    # The hung server hangs up: the run fails, and every waiting request answers with its outcome.
    for thread, _ in syncs:
        thread.join(60)
    answers = [box[0] for _, box in syncs if box]
    assert len(answers) == 100
    assert {(a.status_code, a.json()["code"], a.json()["sync_run"]) for a in answers} == {
        (502, "IMAP_PROTOCOL_ERROR", int(channel.rsplit(":", 1)[1]))
    }


def test_a_wait_ends_on_the_announcement_or_on_a_re_read(mirror) -> None:
    def new_run() -> int:
        with session_scope() as session:
            server = crud_servers.get_server(session, owner_id=None, server_id=mirror.server_id)
            return crud_runs.start_run(session, server=server, trigger="manual")[0].id

    async def scenario() -> None:
        announced = new_run()
        waiting = asyncio.ensure_future(wait_for_run(announced, timeout=60, recheck=3600))
        while pubsub.bus().subscriber_count(pubsub.run_channel(announced)) == 0:
            await asyncio.sleep(0.01)
        pubsub.publish(pubsub.run_channel(announced), {"done": 1, "total": 2})  # progress: no end yet
        await run_db(crud_runs.update_run, run_id=announced, status="success")
        await asyncio.sleep(0.2)
        assert not waiting.done(), "a progress message does not end the wait"
        pubsub.publish(pubsub.run_channel(announced), {"status": "success"})
        assert (await asyncio.wait_for(waiting, 30)).status == "success"

        # Ended without an announcement (as when the scheduler fails an abandoned run): a re-read finds it.
        silent = new_run()
        waiting = asyncio.ensure_future(wait_for_run(silent, timeout=60, recheck=0.1))
        await run_db(crud_runs.update_run, run_id=silent, status="error", error_code="WORKER_LOST")
        assert (await asyncio.wait_for(waiting, 30)).error_code == "WORKER_LOST"

    asyncio.run(scenario())


def test_a_requested_sync_does_not_wait_behind_hung_servers(client, mirror, make_user, monkeypatch) -> None:
    monkeypatch.setattr(settings, "imap_timeout_seconds", 120.0)  # each hang outlasts the test
    monkeypatch.setattr(settings, "sync_wait_timeout_seconds", 60.0)  # a liveness bound: past it, 202
    scheduled = settings.sync_worker_threads + 2  # more hung scheduled syncs than their lane has threads
    requested = settings.sync_request_threads - 1  # other users' requests, short of filling their lane
    servers = [HungImapServer(("connect", "greeting", "login")[n % 3]) for n in range(scheduled + requested)]
    try:
        for number, hung in enumerate(servers):
            owner_id = _owner_id(make_user)
            in_session(
                sync.request,
                Principal(Role.USER, owner_id),
                _hung_server_of(owner_id, hung),
                trigger="schedule" if number < scheduled else "manual",
            )
        # Both sync lanes are busy with hung servers (the old code had two threads for everything).
        busy = settings.sync_worker_threads + requested
        _wait_until(lambda: sum(hung.connections for hung in servers) >= busy, f"{busy} hung syncs running")

        # The healthy mailbox is due too: its scheduled run queues behind the hung ones...
        mirror.deliver(make_message(subject="healthy"))
        queued = in_session(sync.request, Principal.system(), mirror.server_id, trigger="schedule")
        # ...and its owner's request joins that run and has it synced in the requested lane.
        response = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
        assert response.status_code == 200, response.text
        assert response.json()["sync_run"] == queued.id and response.json()["messages_new"] == 1
    finally:
        for hung in servers:
            hung.close()


@pytest.mark.parametrize("stage", ["connect", "login"])
def test_a_run_past_its_time_bound_ends_with_sync_timeout(client, auth, stage, monkeypatch) -> None:
    monkeypatch.setattr(settings, "sync_run_timeout_seconds", 1.0)
    monkeypatch.setattr(settings, "imap_timeout_seconds", 120.0)  # each read alone would wait this long
    monkeypatch.setattr(settings, "sync_wait_timeout_seconds", 60.0)  # a liveness bound: past it, 202
    with session_scope() as session:
        owner_id = crud_users.user_for_token(session, key=auth["Authorization"].split()[1]).id
    with HungImapServer(stage) as hung:
        server_id = _hung_server_of(owner_id, hung)
        response = client.post(f"/api/imap-servers/{server_id}/sync/", headers=auth)
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["code"] == "SYNC_TIMEOUT" and "longer than 1 seconds" in body["message"]
    with session_scope() as session:
        server = session.get(ImapServer, server_id)
        assert server.lease_owner is None and server.last_sync_status == "error"
