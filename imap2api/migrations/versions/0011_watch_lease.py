"""Push: which worker process watches each server (a lease, as for syncs), how the watch goes, and the
live watcher processes the leases are balanced over.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add imap_servers.watch_owner, watch_expires_at (free: nobody watches yet), watch_status; watchers."""
    op.add_column("imap_servers", sa.Column("watch_owner", sa.String(length=100), nullable=True))
    op.add_column("imap_servers", sa.Column("watch_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "imap_servers",
        sa.Column("watch_status", sa.String(length=500), nullable=False, server_default=""),
    )
    op.create_table(
        "watchers",
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )


def downgrade() -> None:
    """Drop them (native DROP COLUMN: a batch rebuild would cascade-delete through the foreign keys)."""
    op.drop_table("watchers")
    op.drop_column("imap_servers", "watch_status")
    op.drop_column("imap_servers", "watch_expires_at")
    op.drop_column("imap_servers", "watch_owner")
