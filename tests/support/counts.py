"""The counts the database keeps (migration 0019) against a count of the emails themselves."""

from __future__ import annotations

from sqlalchemy import text

from imap2api.db import session_scope

# Each query lists the rows where the kept count and the counted one differ (none when exact).
_MISMATCHES = {
    "folders.email_count": """
        SELECT f.id, f.email_count, count(e.id) FROM folders f LEFT JOIN emails e ON e.folder_id = f.id
        GROUP BY f.id, f.email_count HAVING f.email_count <> count(e.id)""",
    "thread_sizes": """
        SELECT coalesce(k.thread_id, c.thread_id), k.email_count, c.n FROM thread_sizes k
        FULL OUTER JOIN (SELECT imap_server_id, thread_id, count(*) AS n FROM emails
                         GROUP BY imap_server_id, thread_id) c
          ON c.imap_server_id = k.imap_server_id AND c.thread_id = k.thread_id
        WHERE k.email_count IS NULL OR c.n IS NULL OR k.email_count <> c.n""",
    "server_counts.thread_count": """
        SELECT s.id, coalesce(k.thread_count, 0), count(DISTINCT e.thread_id) FROM imap_servers s
        LEFT JOIN server_counts k ON k.imap_server_id = s.id LEFT JOIN emails e ON e.imap_server_id = s.id
        GROUP BY s.id, k.thread_count HAVING coalesce(k.thread_count, 0) <> count(DISTINCT e.thread_id)""",
    "server_counts of deleted servers": """
        SELECT k.imap_server_id, k.thread_count, 0 FROM server_counts k
        WHERE k.imap_server_id NOT IN (SELECT id FROM imap_servers)""",
}


def count_mismatches() -> dict[str, list[tuple]]:
    """Each kept count that differs from counting the emails, by kind (empty when all are exact)."""
    found: dict[str, list[tuple]] = {}
    with session_scope() as session:
        for name, query in _MISMATCHES.items():
            rows = [tuple(row) for row in session.execute(text(query)).all()]
            if rows:
                found[name] = rows
    return found
