"""PostgreSQL's search index built after the sync too: new emails wait, unindexed, until the indexer.

Extracting trigrams inside the insert held a sync into PostgreSQL at about 0.4 of the raw limit
(0.7 without the indexes). A PostgreSQL-only column ``emails.search_indexed`` (false on insert)
now says whether an email is in the trigram indexes, which become partial (``WHERE
search_indexed``); a partial btree lists the emails waiting. The ``index_search`` actor flips
them in bounded transactions (``imap2api.crud.search_index``) and a search checks the waiting ones
directly meanwhile, as on SQLite, so results stay exact at every moment. Existing emails count as
indexed. SQLite is untouched: its queue is ``emails_fts_pending`` (0006).

The column is not in the models (like the indexes, ``imap2api.db.include_object`` skips it): no
query but the search index's own reads it, and an insert that leaves it out queues the email.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 01:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SEARCHED = ("subject", "sender", "recipient", "body_text")


def upgrade() -> None:
    """Add the flag (true for what exists), make the trigram indexes partial, index the waiting."""
    if op.get_bind().dialect.name != "postgresql":
        return
    # DEFAULT true first stores nothing per row (PostgreSQL 11+): every existing email is indexed.
    op.execute("ALTER TABLE emails ADD COLUMN search_indexed boolean NOT NULL DEFAULT true")
    op.execute("ALTER TABLE emails ALTER COLUMN search_indexed SET DEFAULT false")
    for name in SEARCHED:
        op.execute(f"DROP INDEX IF EXISTS ix_emails_trgm_{name}")
        op.execute(
            f"CREATE INDEX ix_emails_trgm_{name} ON emails USING gin ({name} gin_trgm_ops) "
            "WHERE search_indexed"
        )
    op.execute("CREATE INDEX ix_emails_search_pending ON emails (id) WHERE NOT search_indexed")


def downgrade() -> None:
    """Index everything inside the insert again (0006's GIN indexes with a pending list)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_emails_search_pending")
    for name in SEARCHED:
        op.execute(f"DROP INDEX IF EXISTS ix_emails_trgm_{name}")
        op.execute(
            f"CREATE INDEX ix_emails_trgm_{name} ON emails USING gin ({name} gin_trgm_ops) "
            "WITH (fastupdate = on, gin_pending_list_limit = 1048576)"
        )
    op.execute("ALTER TABLE emails DROP COLUMN search_indexed")
