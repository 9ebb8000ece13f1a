"""``/changes/``: the change feed, as GraphQL's ``changes`` answers it (``services.changes``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.errors import ApiError
from imap2api.rest.schemas import documented
from imap2api.rest.wire import JSONRoute, coerce_fields
from imap2api.services.changes import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/changes", tags=["changes"], route_class=JSONRoute)

CHANGES = """query($since: String, $limit: Int!) { changes(since: $since, limit: $limit) {
  cursor hasMore created updated destroyed } }"""


class ChangesOut(BaseModel):
    """The caller's emails created, updated and destroyed since a cursor, each listed once."""

    cursor: str = Field(description="Where the next read starts (pass it as since).")
    has_more: bool = Field(description="More changes wait: read again from cursor now.")
    created: list[int]
    updated: list[int] = Field(description="Flags changed, moved, thread changed.")
    destroyed: list[int]


class ExpiredBody(BaseModel):
    """``{"detail": "...", "code": "CURSOR_EXPIRED"}``: read everything again, then a new cursor."""

    detail: str
    code: str


PARAMETERS = [
    {
        "name": "since",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "a cursor from an earlier answer or a webhook payload (omitted: start from now)",
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "description": "at most this many emails",
    },
]


def _expired(error: dict[str, Any]) -> ApiError | None:
    """A cursor whose history is gone: 410 with the code, so a client knows to start over."""
    if (error.get("extensions") or {}).get("code") == "CURSOR_EXPIRED":
        return ApiError(410, {"detail": error["message"], "code": "CURSOR_EXPIRED"})
    return None


@router.get(
    "/",
    response_model=None,
    responses={**documented(ChangesOut), 410: {"model": ExpiredBody}},
    openapi_extra={"parameters": PARAMETERS},
)
async def list_changes(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The caller's emails created, updated and destroyed since the cursor ``since``.

    Without ``since``: the current cursor and empty lists, to start from now. ``has_more``: read
    again from ``cursor`` at once. A cursor whose history is no longer kept answers 410
    (``CURSOR_EXPIRED``): read the emails again and start from a new cursor.
    """
    params = request.query_params
    raw = {name: params[name] for name in ("limit",) if params.get(name, "") != ""}
    limit = coerce_fields(raw, {"limit": int}).get("limit", DEFAULT_LIMIT)
    variables = {"since": params.get("since") or None, "limit": limit}
    feed = (await execute(CHANGES, variables, user=user, on_error=_expired))["changes"]
    return {
        "cursor": feed["cursor"],
        "has_more": feed["hasMore"],
        **{kind: [int(email_id) for email_id in feed[kind]] for kind in ("created", "updated", "destroyed")},
    }
