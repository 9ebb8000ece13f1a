"""DRF's page-number pagination on the wire: page parameters in, count/next/previous out."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from imap2api.rest.errors import ApiError

# For /openapi.json: routes read these from the query string themselves (DRF's lenient parsing).
PAGE_PARAMETERS = [
    {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "page number or 'last'",
    },
    {
        "name": "page_size",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        "description": "default 50, max 100",
    },
]


# GraphQL's Int is 32-bit: a larger page is past the end of any list, a larger page size is capped anyway.
MAX_PAGE = 2**31 - 1


def invalid_page() -> ApiError:
    """DRF's answer for a page that is not a number, below 1 or past the end."""
    return ApiError(404, {"detail": "Invalid page."})


# The page variables of a list operation, for the routes' GraphQL documents.
PAGE_VARIABLES = "$page: Int!, $pageSize: Int, $lastPage: Boolean!"
PAGE_ARGUMENTS = "page: $page, pageSize: $pageSize, lastPage: $lastPage"


def page_variables(params: Any) -> dict[str, Any]:
    """``?page=&page_size=`` as GraphQL variables: ``page=last`` (as in DRF) is ``lastPage``."""
    raw = params.get("page")
    last = raw == "last"
    return {
        "page": 1 if last else page_number(raw),
        "pageSize": page_size(params.get("page_size")),
        "lastPage": last,
    }


def page_number(raw: str | None) -> int:
    """The page asked for: 1 by default; anything but a number from 1 up is a 404 (``last`` apart)."""
    if raw is None or raw == "":
        return 1
    try:
        number = int(raw)
    except ValueError:
        raise invalid_page() from None
    if not 1 <= number <= MAX_PAGE:
        raise invalid_page()
    return number


def page_size(raw: str | None) -> int | None:
    """The page size asked for; an unusable value means the default, a huge one the cap (as in DRF)."""
    try:
        return max(0, min(int(raw), MAX_PAGE)) if raw else None
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
