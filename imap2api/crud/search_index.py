"""The search index's queue: emails a sync stored but the index has not taken in yet.

On SQLite a sync only queues new emails (migration 0006); ``index_pending`` moves them into
``emails_fts`` in bounded transactions, and ``pending_match`` lets a search find queued emails
meanwhile, with the same meaning as the index (case-insensitive substring), so results never depend
on the indexer's progress. On PostgreSQL the queue is GIN's own pending list: ``index_pending``
merges it into the trigram indexes, and PostgreSQL searches it meanwhile.
"""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, text
from sqlalchemy.sql.selectable import TextualSelect
from sqlmodel import Session

from imap2api.crud.common import like_pattern

SEARCHED = ("subject", "sender", "recipient", "body_text")
CHUNK = 400  # emails per transaction: a few MB of text, well under a second of writer lock


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def pending_count(session: Session) -> int:
    """How many emails wait to be indexed (0 on PostgreSQL)."""
    if not _is_sqlite(session):
        return 0
    count: int = session.execute(text("SELECT count(*) FROM emails_fts_pending")).scalar_one()
    return count


def index_pending(session: Session, *, limit: int = CHUNK) -> int:
    """Index up to ``limit`` queued emails, oldest first; returns how many were taken (on
    PostgreSQL, merge the GIN pending lists and return 0).

    The DELETE … RETURNING comes first, so this transaction holds the write lock before it reads:
    two indexers never take the same emails, and an email deleted meanwhile is simply gone.
    """
    if session.get_bind().dialect.name == "postgresql":
        for name in SEARCHED:
            session.execute(text(f"SELECT gin_clean_pending_list('ix_emails_trgm_{name}'::regclass)"))
        return 0
    if not _is_sqlite(session):
        return 0
    ids = list(
        session.execute(
            text(
                "DELETE FROM emails_fts_pending WHERE email_id IN "
                "(SELECT email_id FROM emails_fts_pending ORDER BY email_id LIMIT :limit) RETURNING email_id"
            ),
            {"limit": limit},
        ).scalars()
    )
    if ids:
        columns = ", ".join(SEARCHED)
        session.execute(
            text(
                f"INSERT INTO emails_fts(rowid, {columns}) SELECT id, {columns} FROM emails WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        )
    return len(ids)


def pending_match(term_text: str, fields: tuple[str, ...]) -> TextualSelect:
    """Ids of queued emails whose ``fields`` contain ``term_text``, ignoring case as the index does
    (``imap2api_contains`` is registered on every SQLite connection by ``imap2api.db``).

    CROSS JOIN fixes the join order in SQLite: walk the (usually empty) queue and look emails up,
    never test every email of the mailbox against the queue.
    """
    unknown = set(fields) - set(SEARCHED)
    if unknown:
        raise ValueError(f"not a searched column: {sorted(unknown)}")
    if term_text.isascii():
        # SQLite's LIKE folds ASCII case, in C: the same answer for an ASCII term, many times faster.
        needle = like_pattern(term_text)
        checks = " OR ".join(f"e.{name} LIKE :needle ESCAPE '\\'" for name in fields)
    else:
        needle = term_text
        checks = " OR ".join(f"imap2api_contains(e.{name}, :needle) = 1" for name in fields)
    return (
        text(
            f"SELECT e.id FROM emails_fts_pending AS p CROSS JOIN emails AS e ON e.id = p.email_id "
            f"WHERE {checks}"
        )
        .bindparams(bindparam("needle", needle, unique=True))
        .columns(id=Integer)
    )
