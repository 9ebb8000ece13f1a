"""Database upkeep the engine triggers: planner statistics once tables have grown."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

# The tables whose statistics the API's queries depend on; never the FTS5 index's shadow tables.
ANALYZED = ("emails", "folders", "thread_keys", "attachments")


def refresh_statistics(session: Session) -> bool:
    """On SQLite, re-sample table statistics when ``emails`` has doubled (or halved) since the last time.

    Without them SQLite picks the narrowest index for owner-scoped counts and groupings and reads
    every row. PostgreSQL's autovacuum keeps its own statistics. ``analysis_limit`` bounds the
    sampling, so a refresh costs well under a second at 200k emails. Returns whether it ran.
    """
    if session.get_bind().dialect.name != "sqlite":
        return False
    rows = session.exec(text("SELECT count(*) FROM emails")).one()[0]  # type: ignore[call-overload]
    has_table = session.exec(  # type: ignore[call-overload]
        text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    ).one()[0]
    if has_table:
        stat = session.exec(  # type: ignore[call-overload]
            text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'emails' LIMIT 1")
        ).first()
        analyzed = int(stat[0].split()[0]) if stat else 0
        if analyzed and analyzed / 2 <= rows <= analyzed * 2:
            return False
    if has_table:
        forget_search_index_statistics(session)
    session.exec(text("PRAGMA analysis_limit=1000"))  # type: ignore[call-overload]
    for table in ANALYZED:
        session.exec(text(f"ANALYZE {table}"))  # type: ignore[call-overload]
    return True


def forget_search_index_statistics(session: Session) -> None:
    """Drop planner statistics of the FTS5 index's own tables (a whole-database ANALYZE took them).

    Sampled while the index was small, they lead SQLite to plans for FTS5's internal lookups that
    scan the whole index: each batch indexed then costs more than the last.
    """
    session.exec(text("DELETE FROM sqlite_stat1 WHERE tbl LIKE 'emails\\_fts%' ESCAPE '\\'"))  # type: ignore[call-overload]
