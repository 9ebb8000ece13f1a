"""Page sizes as every list takes them: the default when unset, never above the maximum (as DRF)."""

from __future__ import annotations

from imap2api.config import settings
from imap2api.crud.common import LAST_PAGE, clamp_page_size


def page_size(requested: int | None) -> int:
    """The page size a list uses for ``requested`` (``IMAP2API_PAGE_SIZE``/``MAX_PAGE_SIZE``)."""
    return clamp_page_size(requested, default=settings.page_size, maximum=settings.max_page_size)


def page_number(number: int, *, last: bool = False) -> int:
    """The page crud reads: ``number`` (1-based; below 1 is an invalid page), or the last one."""
    return LAST_PAGE if last else max(number, 0)
