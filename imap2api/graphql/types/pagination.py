"""Page types shared by every paginated list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from imap2api.crud.common import Page as CrudPage

T = TypeVar("T")


@strawberry.type
class Page(Generic[T]):
    """One page of results; ``page`` is 1-based."""

    count: int
    page: int
    page_size: int
    has_next: bool
    has_previous: bool
    results: list[T]


def to_gql_page(page: CrudPage[Any], convert: Callable[[Any], T]) -> Page[T]:
    """Convert a crud page, converting each item with ``convert``."""
    return Page(
        count=page.count,
        page=page.page,
        page_size=page.page_size,
        has_next=page.has_next,
        has_previous=page.has_previous,
        results=[convert(item) for item in page.items],
    )
