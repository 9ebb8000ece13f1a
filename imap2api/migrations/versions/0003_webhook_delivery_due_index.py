"""Index webhook deliveries by status and due time, for the scheduler's scan of overdue attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Every scheduler tick looks for pending/sending attempts past their time."""
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
