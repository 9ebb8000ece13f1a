"""The SQL statements this process sends while a block runs, for tests and benchmarks that count them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from imap2api.db import get_engine


@contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """Every statement sent on imap2api's engine meanwhile, whitespace collapsed to single spaces."""
    found: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:  # noqa: ANN001, ANN002
        found.append(" ".join(statement.split()))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", seen)
