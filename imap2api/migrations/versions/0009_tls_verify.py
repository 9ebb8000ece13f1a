"""Per-server ``tls_verify``: whether the IMAP server's certificate is checked (true for every server).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add imap_servers.tls_verify, true: every stored server keeps being verified."""
    op.add_column(
        "imap_servers", sa.Column("tls_verify", sa.Boolean(), nullable=False, server_default=sa.true())
    )


def downgrade() -> None:
    """Drop it (native DROP COLUMN: a batch rebuild would cascade-delete through the foreign keys)."""
    op.drop_column("imap_servers", "tls_verify")
