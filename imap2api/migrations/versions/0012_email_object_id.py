"""emails.object_id: the RFC 8474 EMAILID of servers offering OBJECTID ("" for every stored email).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column in place (a constant default: no table rebuild on SQLite, no rewrite on PostgreSQL)."""
    op.add_column("emails", sa.Column("object_id", sa.String(length=255), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop it (native DROP COLUMN: a batch rebuild would cascade-delete through the foreign keys)."""
    op.drop_column("emails", "object_id")
