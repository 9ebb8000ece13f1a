"""DRF's page-number pagination on the wire: page parameters in, count/next/previous out."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from imap2api.crud.common import LAST_PAGE
from imap2api.rest.errors import ApiError

# For /openapi.json: routes read these from the query string themselves (DRF's lenient parsing).
PAGE_PARAMETERS = [
    {"name": "page", "in": "query", "required": False, "schema": {"type": "string"}, "description": "page number or 'last'"},
    {"name": "page_size", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100}, "description": "default 50, max 100"},
]


def page_number(raw: str | None) -> int:
    """The page asked for: 1 by default, ``LAST_PAGE`` for "last"; anything else is a 404."""
    if raw is None or raw == "":
        return 1
    if raw == "last":
        return LAST_PAGE
    try:
        return int(raw)
    except ValueError:
        raise ApiError(404, {"detail": "Invalid page."}) from None


def page_size(raw: str | None) -> int | None:
    """The page size asked for; an unusable value falls back to the default, as in DRF."""
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _link(request: Request, page: int) -> str:
    """The absolute URL of another page, keeping every other query parameter."""
    url = request.url
    if page == 1:
        return str(url.remove_query_params("page"))
    return str(url.include_query_params(page=page))


def paginated(request: Request, page: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """The DRF list body for a GraphQL page."""
    number = page["page"]
    return {
        "count": page["count"],
        "next": _link(request, number + 1) if page["hasNext"] else None,
        "previous": _link(request, number - 1) if page["hasPrevious"] else None,
        "results": results,
    }
