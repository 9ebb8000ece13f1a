"""PostgreSQL compresses mail bodies with LZ4 rather than pglz, where the server has LZ4.

A body above about 2 KB is compressed as it is stored (TOAST). pglz did that at about a quarter of
LZ4's speed, in the PostgreSQL process beside the sync on the same cores: with bench.sync's
mailbox it was the largest part of the insert. LZ4 stores a little more (a few percent) and reads
faster too. Only new rows are compressed this way; existing ones keep pglz until they are rewritten
(both read alike). A server built without LZ4 (``default_toast_compression`` cannot be ``lz4``)
keeps pglz. SQLite is untouched.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 03:15:00
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BODIES = ("body_text", "body_html")


def _has_lz4() -> bool:
    """Whether this PostgreSQL server was built with LZ4 (PostgreSQL 14 and later may be)."""
    found = op.get_bind().execute(
        text("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
    )
    return found.first() is not None


def _compress_with(method: str) -> None:
    """Set the compression method of the body columns."""
    columns = ", ".join(f"ALTER COLUMN {name} SET COMPRESSION {method}" for name in BODIES)
    op.execute(f"ALTER TABLE emails {columns}")


def upgrade() -> None:
    """LZ4 for the bodies, on a PostgreSQL server that has it."""
    if op.get_bind().dialect.name == "postgresql" and _has_lz4():
        _compress_with("lz4")


def downgrade() -> None:
    """The server's default method again."""
    if op.get_bind().dialect.name == "postgresql" and _has_lz4():
        _compress_with("default")
