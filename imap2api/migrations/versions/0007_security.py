"""Server-side admin sessions (logout revokes them) and a per-server TLS mode.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add admin_sessions and imap_servers.tls_mode (``ssl`` where use_ssl, else ``starttls``)."""
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_admin_sessions_user_id", "admin_sessions", ["user_id"])
    op.create_index("ix_admin_sessions_key_hash", "admin_sessions", ["key_hash"], unique=True)
    with op.batch_alter_table("imap_servers") as batch:
        batch.add_column(sa.Column("tls_mode", sa.String(length=10), nullable=False, server_default="ssl"))
    # A plain port used to mean "STARTTLS when offered": it now means "STARTTLS, required".
    op.execute("UPDATE imap_servers SET tls_mode = CASE WHEN use_ssl THEN 'ssl' ELSE 'starttls' END")


def downgrade() -> None:
    """Drop both."""
    # Native DROP COLUMN (SQLite 3.35+), not batch mode: recreating imap_servers with foreign keys
    # on would cascade-delete every folder and email of every server.
    op.drop_column("imap_servers", "tls_mode")
    op.drop_index("ix_admin_sessions_key_hash", "admin_sessions")
    op.drop_index("ix_admin_sessions_user_id", "admin_sessions")
    op.drop_table("admin_sessions")
