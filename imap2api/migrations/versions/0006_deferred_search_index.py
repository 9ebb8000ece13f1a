"""Search index built after the sync, not inside it: on SQLite new emails wait in emails_fts_pending.

Indexing full bodies with the FTS5 trigram tokenizer costs several times what storing them does,
so a sync now only queues each new email's id (one small row); the ``index_search`` actor moves
queued emails into ``emails_fts`` once the run is over. Until then a search checks queued emails
directly (``imap2api.crud.search_index``), so results are exact at every moment.

It also drops planner statistics of the index's shadow tables, which made indexing slower with
every batch. The delete and update triggers touch the index only for emails that are in it: FTS5 must never be
told to delete what it was never given (external content tables would silently corrupt).
PostgreSQL gets the same shape from GIN itself: with ``fastupdate`` and a 1 GB pending list, an
insert only appends its trigrams, and the indexer's ``gin_clean_pending_list`` merges them into
the index after the run (autovacuum would, too); PostgreSQL searches its pending list meanwhile.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEARCHED = ("subject", "sender", "recipient", "body_text")
_COLUMNS = ", ".join(SEARCHED)
_NEW = ", ".join(f"new.{name}" for name in SEARCHED)
_OLD = ", ".join(f"old.{name}" for name in SEARCHED)
_INDEXED_OLD = "NOT EXISTS (SELECT 1 FROM emails_fts_pending WHERE email_id = old.id)"

UP = [
    "CREATE TABLE emails_fts_pending (email_id INTEGER PRIMARY KEY)",
    "DROP TRIGGER emails_fts_insert",
    "DROP TRIGGER emails_fts_delete",
    "DROP TRIGGER emails_fts_update",
    "CREATE TRIGGER emails_fts_insert AFTER INSERT ON emails BEGIN "
    "INSERT OR IGNORE INTO emails_fts_pending(email_id) VALUES (new.id); END",
    # One trigger per event, so the index is checked before the queue entry goes.
    f"CREATE TRIGGER emails_fts_delete AFTER DELETE ON emails BEGIN "
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) SELECT 'delete', old.id, {_OLD} "
    f"WHERE {_INDEXED_OLD}; "
    f"DELETE FROM emails_fts_pending WHERE email_id = old.id; END",
    f"CREATE TRIGGER emails_fts_update AFTER UPDATE OF {_COLUMNS} ON emails WHEN {_INDEXED_OLD} BEGIN "
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
    f"INSERT INTO emails_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
]
DOWN = [
    # Index whatever is still queued, then go back to indexing inside the insert.
    f"INSERT INTO emails_fts(rowid, {_COLUMNS}) SELECT id, {_COLUMNS} FROM emails "
    "WHERE id IN (SELECT email_id FROM emails_fts_pending)",
    "DROP TRIGGER emails_fts_insert",
    "DROP TRIGGER emails_fts_delete",
    "DROP TRIGGER emails_fts_update",
    "DROP TABLE emails_fts_pending",
    f"CREATE TRIGGER emails_fts_insert AFTER INSERT ON emails BEGIN "
    f"INSERT INTO emails_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
    f"CREATE TRIGGER emails_fts_delete AFTER DELETE ON emails BEGIN "
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); END",
    f"CREATE TRIGGER emails_fts_update AFTER UPDATE OF {_COLUMNS} ON emails BEGIN "
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
    f"INSERT INTO emails_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
]


PG_PENDING_LIST_KB = 1_048_576


def upgrade() -> None:
    """Queue new emails for indexing instead of indexing them inside the insert."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in SEARCHED:
            op.execute(
                f"ALTER INDEX ix_emails_trgm_{name} SET (fastupdate = on, "
                f"gin_pending_list_limit = {PG_PENDING_LIST_KB})"
            )
        return
    if bind.dialect.name != "sqlite":
        return
    for statement in UP:
        op.execute(statement)
    # Statistics of the index's shadow tables (from a whole-database ANALYZE) slow indexing down:
    # see imap2api.crud.maintenance.forget_search_index_statistics.
    if bind.execute(sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar():
        op.execute("DELETE FROM sqlite_stat1 WHERE tbl LIKE 'emails\\_fts%' ESCAPE '\\'")


def downgrade() -> None:
    """Index inside the insert again."""
    if op.get_bind().dialect.name == "postgresql":
        for name in SEARCHED:
            op.execute(f"SELECT gin_clean_pending_list('ix_emails_trgm_{name}'::regclass)")
            op.execute(f"ALTER INDEX ix_emails_trgm_{name} RESET (gin_pending_list_limit)")
    if op.get_bind().dialect.name == "sqlite":
        for statement in DOWN:
            op.execute(statement)
