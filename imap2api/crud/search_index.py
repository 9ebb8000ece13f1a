"""The search index's queue: emails a sync stored but the index has not taken in yet.

A sync never extracts trigrams itself: on SQLite it only queues new emails in
``emails_fts_pending`` (migration 0006), on PostgreSQL it stores them with ``search_indexed``
false, outside the partial trigram indexes (migration 0017). ``index_pending`` takes them in
bounded transactions, and ``pending_match`` lets a search find the waiting emails meanwhile, with
the same meaning as the index (case-insensitive substring), so results never depend on the
indexer's progress.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Integer, and_, bindparam, inspect, not_, or_, text, true
from sqlalchemy.sql.elements import BindParameter, ColumnClause, ColumnElement
from sqlalchemy.sql.selectable import TextualSelect
from sqlmodel import Session

from imap2api.crud.common import like_pattern

SEARCHED = ("subject", "sender", "recipient", "body_text")
CHUNK = 400  # emails per transaction: a few MB of text, well under a second of writer lock
# SQLite, with ``seconds``: emails are claimed and indexed this many at a time until the time is up.
STEP = 8


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def pending_count(session: Session) -> int:
    """How many emails wait to be indexed."""
    if _is_postgresql(session):
        query = "SELECT count(*) FROM emails WHERE NOT search_indexed"
    elif _is_sqlite(session):
        query = "SELECT count(*) FROM emails_fts_pending"
    else:
        return 0
    count: int = session.execute(text(query)).scalar_one()
    return count


def index_pending(session: Session, *, limit: int = CHUNK, seconds: float | None = None) -> int:
    """Index up to ``limit`` queued emails, oldest first; returns how many were taken. On SQLite,
    ``seconds`` bounds the transaction by time too (it holds the database's only writer lock).

    On SQLite the DELETE … RETURNING comes first, so this transaction holds the write lock before it
    reads: two indexers never take the same emails, and an email deleted meanwhile is simply gone.
    On PostgreSQL the flip is the indexing (the partial GIN indexes take the rows in); SKIP LOCKED
    leaves rows another indexer or a sync holds to a later round.
    """
    if _is_postgresql(session):
        return len(
            session.execute(
                text(
                    "UPDATE emails SET search_indexed = true WHERE id IN (SELECT id FROM emails "
                    "WHERE NOT search_indexed ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id"
                ),
                {"limit": limit},
            ).all()
        )
    if not _is_sqlite(session):
        return 0
    if seconds is None:
        return _index_sqlite(session, limit)
    deadline = time.monotonic() + seconds
    taken = 0
    while taken < limit:
        done = _index_sqlite(session, min(STEP, limit - taken))
        taken += done
        if done == 0 or time.monotonic() >= deadline:
            break
    return taken


def _index_sqlite(session: Session, limit: int) -> int:
    """Move up to ``limit`` queued emails into ``emails_fts`` (SQLite); how many were taken."""
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


def _check_fields(fields: tuple[str, ...]) -> None:
    unknown = set(fields) - set(SEARCHED)
    if unknown:
        raise ValueError(f"not a searched column: {sorted(unknown)}")


def pending_match(terms: Sequence[tuple[str, tuple[str, ...]]]) -> TextualSelect:
    """Ids of queued emails in which every ``(text, fields)`` term is found, ignoring case as the
    index does (``imap2api_contains`` is registered on every SQLite connection by ``imap2api.db``).

    CROSS JOIN fixes the join order in SQLite: walk the (usually empty) queue and look emails up,
    never test every email of the mailbox against the queue.
    """
    clauses: list[str] = []
    needles: list[BindParameter[str]] = []
    for number, (term_text, fields) in enumerate(terms):
        _check_fields(fields)
        if term_text.isascii():
            # SQLite's LIKE folds ASCII case, in C: the same answer for an ASCII term, many times faster.
            needle = like_pattern(term_text)
            checks = " OR ".join(f"e.{name} LIKE :needle{number} ESCAPE '\\'" for name in fields)
        else:
            needle = term_text
            checks = " OR ".join(f"imap2api_contains(e.{name}, :needle{number}) = 1" for name in fields)
        clauses.append(f"({checks})")
        needles.append(bindparam(f"needle{number}", needle, unique=True))
    return (
        text(
            f"SELECT e.id FROM emails_fts_pending AS p CROSS JOIN emails AS e ON e.id = p.email_id "
            f"WHERE {' AND '.join(clauses)}"
        )
        .bindparams(*needles)
        .columns(id=Integer)
    )


def postgres_condition(entity: Any, term_text: str, fields: tuple[str, ...]) -> ColumnElement[bool]:
    """Whether ``entity``'s ``fields`` contain ``term_text`` (ILIKE), on PostgreSQL: the indexed emails
    through the partial trigram indexes, the waiting ones through the partial btree that lists them.

    Two arms with disjoint conditions, so each matches one set of partial indexes and a rare term
    is a BitmapOr of them; a common one is a (parallel) scan. ``IS TRUE`` keeps PostgreSQL from
    factoring the arms' common test out of the OR, which would leave it no partial index to use.
    """
    _check_fields(fields)
    pattern = like_pattern(term_text)
    found = or_(*(getattr(entity, name).ilike(pattern, escape="\\") for name in fields))
    # Not a model column (migration 0017): bound to the entity's table or alias by hand.
    indexed = ColumnClause("search_indexed", Boolean(), _selectable=inspect(entity).selectable)
    return or_(and_(indexed, found), and_(not_(indexed), found.is_(true())))
