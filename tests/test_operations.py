"""Health, readiness, metrics, request ids, structured logs and the status command."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys

from imap2api.config import Settings, settings
from imap2api.logs import configure_logging
from tests.support.messages import make_message


def test_health_and_readiness(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok (embedded)"},
    }


def test_readiness_fails_when_the_database_does_not_answer(client, monkeypatch) -> None:
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
    mirror.deliver(make_message(subject="status"))
    mirror.sync()
    env = {**os.environ, "IMAP2API_DATABASE_URL": settings.sqlalchemy_url}
    output = subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "status"], env=env, check=True, capture_output=True, text=True
    ).stdout
    header, *rows = output.splitlines()
    assert header.split()[:4] == ["ID", "OWNER", "NAME", "HOST"]
    mine = [row for row in rows if row.startswith(f"{mirror.server_id} ")]
    assert mine and "success" in mine[0] and " 1 " in mine[0]


def test_data_directory_and_database_are_private(tmp_path) -> None:
    """A fresh data directory is 0700 and the SQLite files 0600, whatever the umask; an existing
    world-readable installation is tightened at start."""

    def mode(path) -> int:
        return stat.S_IMODE(os.stat(path).st_mode)

    data = tmp_path / "fresh" / "data"
    env = {**os.environ, "IMAP2API_DATA_DIR": str(data)}
    env.pop("IMAP2API_DATABASE_URL", None)
    env.pop("IMAP2API_SECRET_KEY", None)
    script = (
        "import os; os.umask(0o022)\n"
        "from imap2api.db import migrate, session_scope\n"
        "from imap2api.crud import users\n"
        "migrate()\n"
        "with session_scope() as s: users.create_user(s, username='u', password='p')\n"
        "from imap2api.config import settings; settings.resolved_secret_key\n"
        "import sqlite3; c = sqlite3.connect(settings.sqlalchemy_url[10:]);"
        "c.execute('PRAGMA journal_mode=WAL');"
        "c.execute('CREATE TABLE IF NOT EXISTS probe (x)'); c.execute('INSERT INTO probe VALUES (1)');"
        "c.commit(); import sys; sys.stdout.write(str(sorted(os.listdir(settings.data_dir))))\n"
    )
    files = subprocess.run(
        [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert "imap2api.sqlite3-wal" in files and "imap2api.sqlite3-shm" in files
    assert mode(data) == 0o700
    for name in ("imap2api.sqlite3", "imap2api.sqlite3-wal", "imap2api.sqlite3-shm", "secret_key"):
        assert mode(data / name) == 0o600, name

    # An installation made before: 0755 directory, 0644 database.
    data.chmod(0o755)
    (data / "imap2api.sqlite3").chmod(0o644)
    subprocess.run([sys.executable, "-c", "from imap2api.db import migrate; migrate()"], env=env, check=True)
    assert mode(data) == 0o700 and mode(data / "imap2api.sqlite3") == 0o600


def test_list_settings_take_commas_or_json(monkeypatch) -> None:
    monkeypatch.setenv("IMAP2API_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    monkeypatch.setenv("IMAP2API_CORS_ORIGINS", "https://a.example,https://b.example")
    read = Settings()
    assert read.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    assert read.cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("IMAP2API_TRUSTED_PROXIES", '["192.0.2.1"]')
    assert Settings().trusted_proxies == ["192.0.2.1"]
