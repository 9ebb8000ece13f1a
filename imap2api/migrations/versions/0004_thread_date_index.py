"""Indexes for owner-scoped lists: (owner, thread, date) for thread views, (owner, folder) for folder counts.

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
    """Replace the (owner, thread) and (folder) indexes by (owner, thread, date) and (owner, folder)."""
    op.drop_index("ix_emails_owner_thread", "emails")
    op.create_index("ix_emails_owner_thread_date", "emails", ["owner_id", "thread_id", "date"])
    op.drop_index("ix_emails_folder", "emails")
    op.create_index("ix_emails_owner_folder", "emails", ["owner_id", "folder"])


def downgrade() -> None:
    """Put the previous indexes back."""
    op.drop_index("ix_emails_owner_folder", "emails")
    op.create_index("ix_emails_folder", "emails", ["folder"])
    op.drop_index("ix_emails_owner_thread_date", "emails")
    op.create_index("ix_emails_owner_thread", "emails", ["owner_id", "thread_id"])
