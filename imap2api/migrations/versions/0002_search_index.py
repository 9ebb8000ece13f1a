"""Search index: FTS5 trigram on SQLite, pg_trgm GIN indexes on PostgreSQL; owner/date index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEARCHED = ("subject", "sender", "recipient", "body_text")
_COLUMNS = ", ".join(SEARCHED)
_NEW = ", ".join(f"new.{name}" for name in SEARCHED)
_OLD = ", ".join(f"old.{name}" for name in SEARCHED)

SQLITE_UP = [
    # External content: the index holds trigrams only; the text stays in emails.
    f"CREATE VIRTUAL TABLE emails_fts USING fts5({_COLUMNS}, content='emails', content_rowid='id', "
    "tokenize='trigram')",
    f"CREATE TRIGGER emails_fts_insert AFTER INSERT ON emails BEGIN "
    f"INSERT INTO emails_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
    f"CREATE TRIGGER emails_fts_delete AFTER DELETE ON emails BEGIN "
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); END",
    f"CREATE TRIGGER emails_fts_update AFTER UPDATE OF {_COLUMNS} ON emails BEGIN "
    f"INSERT INTO emails_fts(emails_fts, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD}); "
    f"INSERT INTO emails_fts(rowid, {_COLUMNS}) VALUES (new.id, {_NEW}); END",
    "INSERT INTO emails_fts(emails_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS emails_fts_update",
    "DROP TRIGGER IF EXISTS emails_fts_delete",
    "DROP TRIGGER IF EXISTS emails_fts_insert",
    "DROP TABLE IF EXISTS emails_fts",
]
POSTGRES_UP = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"] + [
    f"CREATE INDEX IF NOT EXISTS ix_emails_trgm_{name} ON emails USING gin ({name} gin_trgm_ops)"
    for name in SEARCHED
]
POSTGRES_DOWN = [f"DROP INDEX IF EXISTS ix_emails_trgm_{name}" for name in SEARCHED]


def upgrade() -> None:
    """Create the search index of the running dialect and the owner/date index."""
    op.create_index("ix_emails_owner_date", "emails", ["owner_id", "date"])
    op.create_index("ix_emails_owner_thread", "emails", ["owner_id", "thread_id"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_UP if dialect == "sqlite" else POSTGRES_UP if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    """Drop them again."""
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_DOWN if dialect == "sqlite" else POSTGRES_DOWN if dialect == "postgresql" else []:
        op.execute(statement)
    op.drop_index("ix_emails_owner_thread", "emails")
    op.drop_index("ix_emails_owner_date", "emails")
