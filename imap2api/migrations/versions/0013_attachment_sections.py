"""attachments.section and encoding: where each attachment is for IMAP, so a download fetches just it.

Attachments mirrored before get "" for both: their download locates them in the message instead.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add both columns in place (constant defaults: no rebuild, no rewrite)."""
    op.add_column(
        "attachments", sa.Column("section", sa.String(length=100), nullable=False, server_default="")
    )
    op.add_column(
        "attachments", sa.Column("encoding", sa.String(length=30), nullable=False, server_default="")
    )


def downgrade() -> None:
    """Drop them (native DROP COLUMN: a batch rebuild would cascade-delete through the foreign keys)."""
    op.drop_column("attachments", "encoding")
    op.drop_column("attachments", "section")
