"""Object ids as GraphQL sees them."""

from __future__ import annotations

import strawberry

from imap2api.errors import NotFound

MAX_ID = 2**31 - 1  # primary keys are 32-bit INTEGER columns on PostgreSQL


def parse_id(value: strawberry.ID | str | int) -> int:
    """An integer primary key from a GraphQL ID; anything that cannot be one is simply not found."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise NotFound() from None
    if not 1 <= number <= MAX_ID:
        raise NotFound()
    return number
