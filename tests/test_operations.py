"""Health, readiness, metrics, request ids, structured logs and the status command."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from tests.support.messages import make_message


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "broker": "ok (embedded)"}}


def test_readiness_fails_when_the_database_does_not_answer(client, monkeypatch) -> None:
    from imap2api.config import settings

    monkeypatch.setattr(settings, "database_url", "postgresql://nobody@127.0.0.1:1/none")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")


def test_metrics(client, mirror) -> None:
    mirror.deliver(make_message(subject="counted"))
    client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
    client.get("/api/emails/", headers=mirror.headers)
    client.get("/api/emails/999999/", headers=mirror.headers)
    text = client.get("/metrics").text
    assert 'imap2api_http_requests_total{method="GET",route="/api/emails/",status="200"}' in text
    assert 'route="/api/emails/{email_id}/",status="404"' in text
    assert "imap2api_http_request_duration_seconds_bucket" in text
    assert 'imap2api_sync_runs_total{status="success"}' in text
    assert "imap2api_messages_fetched_total" in text
    assert f'imap2api_sync_lag_seconds{{server="{mirror.server_id}"}}' in text
    assert f'imap2api_sync_duration_seconds{{server="{mirror.server_id}"}}' in text
    assert 'imap2api_queue_messages{queue="sync"}' in text


def test_request_ids(client, auth) -> None:
    response = client.get("/api/emails/", headers=auth)
    assert len(response.headers["x-request-id"]) == 16
    echoed = client.get("/api/emails/", headers={**auth, "X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_json_logs_carry_context_and_no_secrets(mirror, monkeypatch, capsys) -> None:
    from imap2api.config import settings
    from imap2api.logs import configure_logging

    monkeypatch.setattr(settings, "log_format", "json")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging()
    try:
        mirror.configure(password="wrong-password-123")
        mirror.sync()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    failure = [line for line in lines if line["logger"] == "imap2api.sync"]
    assert failure and failure[0]["level"] == "WARNING" and "sync_run" in failure[0]
    assert "wrong-password-123" not in json.dumps(lines)


def test_status_command(mirror, database) -> None:
    from imap2api.config import settings

    mirror.deliver(make_message(subject="status"))
    mirror.sync()
    env = {**os.environ, "IMAP2API_DATABASE_URL": settings.sqlalchemy_url}
    output = subprocess.run([sys.executable, "-m", "imap2api.cli", "status"], env=env, check=True,
                            capture_output=True, text=True).stdout
    header, *rows = output.splitlines()
    assert header.split()[:4] == ["ID", "OWNER", "NAME", "HOST"]
    mine = [row for row in rows if row.startswith(f"{mirror.server_id} ")]
    assert mine and "success" in mine[0] and " 1 " in mine[0]
