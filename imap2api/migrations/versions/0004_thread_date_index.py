"""Thread lists: a covering (owner, thread, date) index, so "newest message per thread" reads no rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 23:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the (owner, thread) index by (owner, thread, date)."""
    op.drop_index("ix_emails_owner_thread", "emails")
    op.create_index("ix_emails_owner_thread_date", "emails", ["owner_id", "thread_id", "date"])


def downgrade() -> None:
    """Put the narrower index back."""
    op.drop_index("ix_emails_owner_thread_date", "emails")
    op.create_index("ix_emails_owner_thread", "emails", ["owner_id", "thread_id"])
