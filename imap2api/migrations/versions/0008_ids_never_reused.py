"""Ids are never reused: SQLite tables get AUTOINCREMENT (PostgreSQL's sequences never reuse ids).

Without AUTOINCREMENT SQLite gives a new row the highest id + 1, so after the newest server is
deleted the next one gets its id, and a webhook consumer that remembered it sees another account's
mail. SQLite cannot add AUTOINCREMENT to a table: each one is rebuilt the way SQLite documents it
(create the new table, copy the rows with their ids, drop the old one, rename the new one, create
its indexes and triggers again from their stored SQL, the search index's triggers on emails too).
The copy leaves sqlite_sequence at the highest id, so ids continue after it; an id deleted before
this migration, above today's highest, is the last one that can come back.

Foreign keys are off while this runs (migrations/env.py): dropping a table with them on would
cascade-delete every row that refers to it. The rows keep their ids, so emails_fts (content_rowid
id) and every foreign key stay valid; both are checked before the migration commits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import re
from collections.abc import Callable

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

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

_NAME = re.compile(r'^CREATE TABLE\s+("?)(\w+)\1\s*\(')
_ID = re.compile(r"^(\s*)id INTEGER NOT NULL,", re.MULTILINE)
_ID_AUTOINCREMENT = re.compile(r"^(\s*)id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,", re.MULTILINE)
_PRIMARY_KEY = re.compile(r",\s*PRIMARY KEY \(id\)")


def _with_autoincrement(sql: str) -> str | None:
    """The table's CREATE TABLE with ``id`` as INTEGER PRIMARY KEY AUTOINCREMENT (None: it has it)."""
    if "AUTOINCREMENT" in sql:
        return None
    if len(_ID.findall(sql)) != 1 or len(_PRIMARY_KEY.findall(sql)) != 1:
        raise RuntimeError(f"unexpected table definition, not rebuilt: {sql}")
    return _PRIMARY_KEY.sub("", _ID.sub(r"\1id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,", sql))


def _without_autoincrement(sql: str) -> str | None:
    """The table's CREATE TABLE as before this migration (None: it has no AUTOINCREMENT)."""
    if len(_ID_AUTOINCREMENT.findall(sql)) != 1:
        return None
    body, _, _ = sql.rpartition(")")
    return _ID_AUTOINCREMENT.sub(r"\1id INTEGER NOT NULL,", body).rstrip() + ", \n\tPRIMARY KEY (id)\n)"


def _rebuild(bind: Connection, table: str, change: Callable[[str], str | None]) -> None:
    """Recreate ``table`` from its changed definition, keeping its rows, ids, indexes and triggers."""
    sql = bind.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": table}
    ).scalar_one()
    changed = change(sql)
    if changed is None:
        return
    # Indexes and triggers go with the dropped table; their SQL is kept to create them again.
    # Automatic indexes (UNIQUE constraints) have no SQL and come back with the new table.
    extras = list(
        bind.execute(
            text(
                "SELECT sql FROM sqlite_master WHERE tbl_name = :name AND sql IS NOT NULL "
                "AND type IN ('index', 'trigger') ORDER BY type, name"
            ),
            {"name": table},
        ).scalars()
    )
    rebuilt = f"{table}__rebuilt"
    bind.exec_driver_sql(_NAME.sub(f'CREATE TABLE "{rebuilt}" (', changed, count=1))
    bind.exec_driver_sql(f'INSERT INTO "{rebuilt}" SELECT * FROM "{table}"')
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    bind.exec_driver_sql(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
    for statement in extras:
        bind.exec_driver_sql(statement)


def _rebuild_all(change: Callable[[str], str | None]) -> None:
    """Rebuild every table with ids (SQLite only), then check foreign keys and the search index."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("foreign keys must be off to rebuild tables (dropping one would cascade)")
    # One transaction from the first CREATE TABLE on (Python's sqlite3 would run that one alone):
    # a failure leaves the database as it was.
    if not bind.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        bind.exec_driver_sql("BEGIN")
    for table in TABLES:
        _rebuild(bind, table, change)
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")
    # Internal consistency of the index; rows are compared with emails by the tests, whose
    # queue (emails_fts_pending) is empty.
    bind.exec_driver_sql("INSERT INTO emails_fts(emails_fts, rank) VALUES ('integrity-check', 0)")


def upgrade() -> None:
    """Give every id column AUTOINCREMENT on SQLite; nothing on PostgreSQL."""
    _rebuild_all(_with_autoincrement)


def downgrade() -> None:
    """Rebuild the tables without AUTOINCREMENT (SQLite reuses the highest ids again)."""
    _rebuild_all(_without_autoincrement)
