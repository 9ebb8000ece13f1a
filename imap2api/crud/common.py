"""Pagination shared by every list, and the dialect-aware INSERTs: upserts, bulk inserts with RETURNING."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, String, Table, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from imap2api.errors import Imap2ApiError

T = TypeVar("T")

LAST_PAGE = -1


class InvalidPage(Imap2ApiError):
    """Raised when a page number is below 1 or past the last page."""

    code = "INVALID_PAGE"

    def __init__(self) -> None:
        super().__init__("Invalid page.")


@dataclass
class Page(Generic[T]):
    """One page of a list, with the total count."""

    items: list[T]
    count: int
    page: int
    page_size: int

    @property
    def has_next(self) -> bool:
        """Whether a later page exists."""
        return self.page * self.page_size < self.count

    @property
    def has_previous(self) -> bool:
        """Whether an earlier page exists."""
        return self.page > 1


def like_pattern(text_value: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text_value`` anywhere."""
    escaped = text_value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def clamp_page_size(page_size: int | None, *, default: int, maximum: int) -> int:
    """The page size to use: the default when unset or invalid, never above the maximum (as DRF)."""
    if page_size is None or page_size < 1:
        return default
    return min(page_size, maximum)


def resolve_page(page: int, count: int, page_size: int) -> int:
    """Check a 1-based page number against the count (``LAST_PAGE`` means the last one)."""
    last = max(1, math.ceil(count / page_size))
    if page == LAST_PAGE:
        return last
    if page < 1 or page > last:
        raise InvalidPage()
    return page


def paginate(
    session: Session, statement: Any, *, page: int, page_size: int, count: int | None = None
) -> Page[Any]:
    """Run ``statement`` for one page, counting the whole result first (unless the count is given)."""
    if count is None:
        count = session.exec(select(func.count()).select_from(statement.order_by(None).subquery())).one()
    number = resolve_page(page, count, page_size)
    items = list(session.exec(statement.offset((number - 1) * page_size).limit(page_size)))
    return Page(items=items, count=count, page=number, page_size=page_size)


def dialect_insert(session: Session, table: Table) -> Any:
    """An INSERT of ``table`` in the session's dialect (PostgreSQL or SQLite), with ``on_conflict_do_*``."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _array_type(column: Column[Any], dialect: Any) -> str:
    """The array type a column's values travel as: strings as text[], whose assignment to a
    varchar(n) column fails on a value too long as an INSERT's would (a cast would cut it)."""
    if isinstance(column.type, String):
        return "text[]"
    return f"{column.type.compile(dialect=dialect)}[]"


def insert_returning(
    session: Session, table: Table, rows: list[dict[str, Any]], returning: tuple[Column[Any], ...]
) -> list[Any]:
    """Insert many rows in one statement and return ``returning`` of each, in no particular order.

    On PostgreSQL the rows travel as one binary array per column (``INSERT ... SELECT FROM unnest``).
    SQLAlchemy's multi-row VALUES has a placeholder per value (30 columns x 200 emails), and psycopg
    splits such a statement's text in Python, holding the GIL the sync's fetch-and-parse thread
    needs: bench.sync's insert stage took 9.5 s of a 17 s PostgreSQL sync of 10,000 emails, 3.4 s of
    10.5 s this way. SQLite takes SQLAlchemy's INSERT. Every row must have the same keys (as for
    any executemany).
    """
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return list(session.execute(insert(table).returning(*returning), rows).all())
    names = list(rows[0])
    quote = dialect.identifier_preparer.quote  # "references" is a keyword
    columns = ", ".join(quote(name) for name in names)
    # %(name)b: psycopg sends each array in binary, which the server takes without parsing or escaping.
    arrays = ", ".join(
        f"CAST(%(c{index})b AS {_array_type(table.c[name], dialect)})" for index, name in enumerate(names)
    )
    back = ", ".join(quote(column.name) for column in returning)
    statement = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({columns}) "
        f"SELECT * FROM unnest({arrays}) RETURNING {back}"
    )
    values = {f"c{index}": [row[name] for row in rows] for index, name in enumerate(names)}
    return list(session.connection().exec_driver_sql(statement, values).all())
