"""The first hour: a CA certificate per server, and the folders a sync could not find.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns in place (constant defaults: no rebuild)."""
    op.add_column("imap_servers", sa.Column("tls_ca_cert", sa.Text(), nullable=False, server_default=""))
    op.add_column("sync_runs", sa.Column("missing_folders", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop them (native DROP COLUMN: a batch rebuild would cascade-delete)."""
    op.drop_column("sync_runs", "missing_folders")
    op.drop_column("imap_servers", "tls_ca_cert")
