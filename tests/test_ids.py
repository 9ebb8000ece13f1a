"""Ids are never given out twice (migration 0008): a webhook consumer that remembers ``imap_server: 12``
never sees another account's mail under it, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from imap2api.db import alembic_config, make_engine, session_scope
from tests.support.messages import make_message

TABLES = (
    "users",
    "api_tokens",
    "admin_sessions",
    "imap_servers",
    "folders",
    "emails",
    "attachments",
    "thread_keys",
    "sync_runs",
    "webhooks",
    "webhook_deliveries",
)


def test_deleted_ids_are_never_given_out_again(client, mirror) -> None:
    server = {
        "name": "newest",
        "host": mirror.dovecot.host,
        "port": mirror.dovecot.port,
        "username": mirror.mail_user,
        "password": "secret",
        "use_ssl": False,
    }
    newest = client.post("/api/imap-servers/", headers=mirror.headers, json=server).json()["id"]
    assert client.delete(f"/api/imap-servers/{newest}/", headers=mirror.headers).status_code == 204
    assert client.post("/api/imap-servers/", headers=mirror.headers, json=server).json()["id"] > newest

    hook = {"url": "https://hooks.example.com/ids"}
    newest = client.post("/api/webhooks/", headers=mirror.headers, json=hook).json()["id"]
    assert client.delete(f"/api/webhooks/{newest}/", headers=mirror.headers).status_code == 204
    assert client.post("/api/webhooks/", headers=mirror.headers, json=hook).json()["id"] > newest

    mirror.deliver(make_message(subject="first"))
    assert mirror.sync().status == "success"
    [first] = mirror.emails()
    with mirror.imap() as imap:
        imap.select_folder("INBOX")
        imap.delete_messages(imap.search("ALL"))
        imap.expunge()
    assert mirror.sync().messages_deleted == 1
    mirror.deliver(make_message(subject="second"))
    assert mirror.sync().status == "success"
    [second] = mirror.emails()
    assert second.id > first.id


def _fill(connection: Connection, table: str, **values: object) -> None:
    """Insert a row, giving every NOT NULL column without a default a value of its type."""
    row = dict(values)
    for _, name, kind, not_null, default, key in connection.execute(text(f"PRAGMA table_info({table})")):
        if name not in row and not_null and default is None and not key:
            kind = kind.upper()
            row[name] = (
                0
                if kind in ("INTEGER", "BIGINT", "BOOLEAN")
                else ("2026-01-01 00:00:00" if kind == "DATETIME" else f"{table} {name}")
            )
    names = ", ".join(f'"{name}"' for name in row)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(f':{n}' for n in row)})"), row)


def _rows(connection: Connection) -> dict[str, list[tuple]]:
    """Every row of every table with ids, by id."""
    return {
        table: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
        for table in (*TABLES, "events")
    }


def _index(connection: Connection, ids: list[int]) -> None:
    """Move queued emails into the search index, as the indexer does."""
    columns = "subject, sender, recipient, body_text"
    for email_id in ids:
        connection.execute(
            text(f"INSERT INTO emails_fts(rowid, {columns}) SELECT id, {columns} FROM emails WHERE id = :id"),
            {"id": email_id},
        )
        connection.execute(text("DELETE FROM emails_fts_pending WHERE email_id = :id"), {"id": email_id})


def _matches(connection: Connection, term: str) -> list[int]:
    """Ids of the indexed emails containing ``term``."""
    query = text("SELECT rowid FROM emails_fts WHERE emails_fts MATCH :term ORDER BY rowid")
    return [row[0] for row in connection.execute(query, {"term": f'"{term}"'})]


def test_upgrading_a_filled_sqlite_database_keeps_its_rows_ids_and_search_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0007")
    engine = make_engine(url)
    # Ids with gaps, as deletes leave them; every table has rows that point at other tables' rows.
    with engine.begin() as connection:
        for user in (3, 7):
            _fill(connection, "users", id=user, username=f"user{user}")
        _fill(connection, "api_tokens", id=5, user_id=3, key_hash="token")
        _fill(connection, "admin_sessions", id=4, user_id=7, key_hash="session")
        _fill(connection, "imap_servers", id=2, owner_id=7)
        _fill(connection, "imap_servers", id=9, owner_id=3)
        _fill(connection, "folders", id=6, imap_server_id=9, name="INBOX")
        for email, subject in ((10, "alpha indexed"), (12, "bravo queued"), (15, "charlie indexed")):
            _fill(
                connection,
                "emails",
                id=email,
                owner_id=3,
                imap_server_id=9,
                folder_id=6,
                uid=email,
                subject=subject,
            )
        _index(connection, [10, 15])
        _fill(connection, "attachments", id=8, email_id=12)
        _fill(connection, "attachments", id=11, email_id=10)
        _fill(connection, "thread_keys", id=13, imap_server_id=9, message_id="<a@example.com>")
        _fill(connection, "sync_runs", id=14, imap_server_id=9, status="success")
        _fill(connection, "webhooks", id=16, owner_id=3, imap_server_id=9)
        _fill(connection, "events", id="evt_1", owner_id=3, imap_server_id=9)
        _fill(connection, "webhook_deliveries", id=17, webhook_id=16, event_id="evt_1")
        before = _rows(connection)
    engine.dispose()

    command.upgrade(alembic_config(url), "0008")  # the rebuild under test (later ones add columns)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            assert _rows(connection) == before
            # Each table's sequence continues after its highest id.
            highest = {table: rows[-1][0] for table, rows in before.items() if table != "events"}
            sequence = connection.execute(text("SELECT name, seq FROM sqlite_sequence")).tuples().all()
            assert dict(sequence) == highest
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            # The index and its triggers work on the rebuilt emails table.
            connection.execute(text("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 0)"))
            assert _matches(connection, "indexed") == [10, 15] and _matches(connection, "bravo") == []
            _index(connection, [12])
            connection.execute(text("DELETE FROM emails WHERE id = 15"))  # the newest email
            _fill(connection, "emails", owner_id=3, imap_server_id=9, folder_id=6, uid=99, subject="delta")
            assert connection.execute(text("SELECT max(id) FROM emails")).scalar_one() == 16
            assert connection.execute(text("SELECT email_id FROM emails_fts_pending")).scalars().all() == [16]
            _index(connection, [16])
            connection.execute(text("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 1)"))
            assert _matches(connection, "indexed") == [10] and _matches(connection, "bravo") == [12]
            assert _matches(connection, "delta") == [16]
            after = _rows(connection)
    finally:
        engine.dispose()

    # And back: the same rows without AUTOINCREMENT.
    command.downgrade(alembic_config(url), "0007")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            assert _rows(connection) == after
            schema = connection.execute(text("SELECT group_concat(sql) FROM sqlite_master")).scalar_one()
            assert "AUTOINCREMENT" not in schema
            connection.execute(text("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 1)"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_every_table_with_ids_is_autoincrement_on_sqlite(database: str) -> None:
    with session_scope() as session:
        tables = dict(session.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all())
    autoincrement = "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"
    assert [name for name in TABLES if autoincrement not in tables[name]] == []
