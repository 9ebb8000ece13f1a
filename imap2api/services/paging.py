"""Page sizes as every list takes them: the default when unset, never above the maximum (as DRF)."""

from __future__ import annotations

from imap2api.config import settings
from imap2api.crud.common import clamp_page_size


def page_size(requested: int | None) -> int:
    """The page size a list uses for ``requested`` (``IMAP2API_PAGE_SIZE``/``MAX_PAGE_SIZE``)."""
    return clamp_page_size(requested, default=settings.page_size, maximum=settings.max_page_size)
