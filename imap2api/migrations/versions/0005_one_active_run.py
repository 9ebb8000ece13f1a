"""At most one queued-or-running sync run per server (a partial unique index).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    """Close duplicate active runs left by earlier races, then enforce one per server."""
    op.execute(
        "UPDATE sync_runs SET status = 'error', error_code = 'SUPERSEDED', "
        "error = 'another run of this server was active' "
        "WHERE status IN ('queued', 'running') AND id NOT IN "
        "(SELECT max(id) FROM sync_runs WHERE status IN ('queued', 'running') GROUP BY imap_server_id)"
    )
    op.create_index(
        "ux_sync_runs_one_active",
        "sync_runs",
        ["imap_server_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ux_sync_runs_one_active", "sync_runs")
