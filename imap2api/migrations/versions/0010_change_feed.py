"""The change feed: emails.change_seq and created_seq, change_counters, email_tombstones.

Existing emails get 0 for both: they were there before the feed, and no cursor is older than it.
Columns are added in place (a NOT NULL column with a constant default needs no table rebuild on
SQLite, nor a rewrite on PostgreSQL 11+), so the migration is quick on a large mirror.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _seq(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default=sa.text("0"))


def upgrade() -> None:
    """Add the sequence columns and their index, the per-user counters and the tombstones."""
    op.add_column("emails", _seq("change_seq"))
    op.add_column("emails", _seq("created_seq"))
    op.create_index("ix_emails_owner_change", "emails", ["owner_id", "change_seq", "id"])
    op.create_table(
        "change_counters",
        sa.Column("owner_id", sa.Integer(), autoincrement=False, nullable=False),
        _seq("value"),
        _seq("pruned_seq"),
        sa.PrimaryKeyConstraint("owner_id"),
    )
    op.create_table(
        "email_tombstones",
        sa.Column("email_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("imap_server_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["imap_server_id"], ["imap_servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("email_id"),
    )
    op.create_index("ix_email_tombstones_owner_seq", "email_tombstones", ["owner_id", "seq", "email_id"])
    op.create_index("ix_email_tombstones_imap_server_id", "email_tombstones", ["imap_server_id"])
    op.create_index("ix_email_tombstones_created_at", "email_tombstones", ["created_at"])


def downgrade() -> None:
    """Drop them (native DROP COLUMN: a batch rebuild would cascade-delete through the foreign keys)."""
    op.drop_table("email_tombstones")
    op.drop_table("change_counters")
    op.drop_index("ix_emails_owner_change", table_name="emails")
    op.drop_column("emails", "created_seq")
    op.drop_column("emails", "change_seq")
