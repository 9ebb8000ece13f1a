"""Database upkeep the engine triggers: planner statistics once tables have grown."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


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
    session.exec(text("PRAGMA analysis_limit=1000"))  # type: ignore[call-overload]
    session.exec(text("ANALYZE"))  # type: ignore[call-overload]
    return True
