"""Sending: each server's SMTP settings, and the outbox of messages to send.

Stored servers get sending off (no SMTP host) and the defaults for the rest; the owner turns it on
by giving an SMTP host (with the password, which that needs).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SERVER_COLUMNS = (
    ("email_address", sa.String(length=320), ""),
    ("display_name", sa.String(length=255), ""),
    ("smtp_host", sa.String(length=255), ""),
    ("smtp_port", sa.Integer(), "587"),
    ("smtp_security", sa.String(length=10), "starttls"),
    ("smtp_username", sa.String(length=255), ""),
    ("smtp_auth", sa.Boolean(), sa.true()),
    ("save_sent", sa.Boolean(), sa.true()),
    ("smtp_password_encrypted", sa.Text(), ""),
)


def upgrade() -> None:
    """Add the server columns in place (constant defaults: no rebuild), and create the outbox."""
    for name, type_, default in SERVER_COLUMNS:
        op.add_column("imap_servers", sa.Column(name, type_, nullable=False, server_default=default))
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("imap_server_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("cc", sa.Text(), nullable=False),
        sa.Column("bcc", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("reply_to_email_id", sa.BigInteger(), nullable=True),
        sa.Column("forward_email_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(length=40), nullable=False),
        sa.Column("smtp_response", sa.Text(), nullable=False),
        sa.Column("refused", sa.Text(), nullable=False),
        sa.Column("sent_copy", sa.String(length=20), nullable=False),
        sa.Column("email_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("envelope_from", sa.Text(), nullable=False),
        sa.Column("envelope_to", sa.Text(), nullable=False),
        sa.Column("smtputf8", sa.Boolean(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("copy_attempts", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["imap_server_id"], ["imap_servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "idempotency_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_owner_id", "outbox", ["owner_id"])
    op.create_index("ix_outbox_server_message", "outbox", ["imap_server_id", "message_id"])
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_owner_created", "outbox", ["owner_id", "created_at"])


def downgrade() -> None:
    """Drop the outbox and the columns (native DROP COLUMN: a batch rebuild would cascade-delete)."""
    op.drop_table("outbox")
    for name, _, _ in reversed(SERVER_COLUMNS):
        op.drop_column("imap_servers", name)
