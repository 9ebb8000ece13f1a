"""Object ids as callers send them (GraphQL IDs, REST path segments, form values)."""

from __future__ import annotations

from imap2api.errors import NotFound

MAX_ID = 2**31 - 1  # primary keys are 32-bit INTEGER columns on PostgreSQL


def parse_id(value: str | int) -> int:
    """An integer primary key from an id as sent; anything that cannot be one is simply not found."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise NotFound() from None
    if not 1 <= number <= MAX_ID:
        raise NotFound()
    return number
