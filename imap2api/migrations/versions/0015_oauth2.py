"""OAuth2: each server's way of logging in, its encrypted tokens, and the hosted flows under way.

Stored servers keep logging in with their password (auth_type "password").

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SERVER_COLUMNS = (
    ("auth_type", sa.String(length=10), "password"),
    ("oauth2_token_url", sa.String(length=2000), ""),
    ("oauth2_client_id", sa.String(length=255), ""),
    ("oauth2_token_stored", sa.Boolean(), sa.false()),
    ("needs_reauth", sa.Boolean(), sa.false()),
    ("oauth2_refresh_token_encrypted", sa.Text(), ""),
    ("oauth2_access_token_encrypted", sa.Text(), ""),
    ("oauth2_client_secret_encrypted", sa.Text(), ""),
)
NULLABLE_SERVER_COLUMNS = (
    ("oauth2_provider", sa.String(length=10)),
    ("oauth2_expires_at", sa.DateTime(timezone=True)),
    ("oauth2_refreshed_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Add the server columns in place (constant defaults: no rebuild), and create the flows' table."""
    for name, type_, default in SERVER_COLUMNS:
        op.add_column("imap_servers", sa.Column(name, type_, nullable=False, server_default=default))
    for name, type_ in NULLABLE_SERVER_COLUMNS:
        op.add_column("imap_servers", sa.Column(name, type_, nullable=True))
    op.create_table(
        "oauth2_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("imap_server_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=10), nullable=False),
        sa.Column("code_verifier_encrypted", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("return_to", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["imap_server_id"], ["imap_servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    op.create_index("ix_oauth2_states_user_id", "oauth2_states", ["user_id"])
    op.create_index("ix_oauth2_states_imap_server_id", "oauth2_states", ["imap_server_id"])
    op.create_index("ix_oauth2_states_expires_at", "oauth2_states", ["expires_at"])


def downgrade() -> None:
    """Drop the flows' table and the columns (native DROP COLUMN: a batch rebuild would cascade-delete)."""
    op.drop_table("oauth2_states")
    for name, *_ in reversed((*SERVER_COLUMNS, *NULLABLE_SERVER_COLUMNS)):
        op.drop_column("imap_servers", name)
