"""``/tokens/``: list and revoke the caller's own API tokens (keys are never shown again)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from imap2api.models import ApiTokenPublic
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.pagination import (
    PAGE_ARGUMENTS,
    PAGE_PARAMETERS,
    PAGE_VARIABLES,
)
from imap2api.rest.resource import list_page
from imap2api.rest.schemas import ERRORS, documented
from imap2api.rest.shapes import RestOutput, openapi_model
from imap2api.rest.wire import JSONRoute

router = APIRouter(prefix="/tokens", tags=["tokens"], route_class=JSONRoute)

TOKEN = RestOutput(ApiTokenPublic, first=("id", "name", "prefix"))
LIST = f"""query({PAGE_VARIABLES}) {{ apiTokens({PAGE_ARGUMENTS}) {{
  count page hasNext hasPrevious results {{ {TOKEN.selection} }} }} }}"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) }"
to_rest = TOKEN.to_rest


@openapi_model(ApiTokenPublic, first=("id", "name", "prefix"), output=True)
class ApiTokenOut(BaseModel):
    """One API token, without its key."""


class ApiTokenList(BaseModel):
    """A page of the caller's tokens, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[ApiTokenOut]


@router.get(
    "/",
    response_model=None,
    responses=documented(ApiTokenList),
    openapi_extra={"parameters": PAGE_PARAMETERS},
)
async def list_tokens(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The caller's API tokens, newest first."""
    return await list_page(request, user, LIST, "apiTokens", to_rest)


@router.delete("/{token_id}/", status_code=204, response_class=Response, responses=ERRORS)
async def revoke_token(token_id: str, user: CurrentUser) -> Response:
    """Revoke one of the caller's tokens (the one making this request included)."""
    await execute(REVOKE, {"id": token_id}, user=user)
    return Response(status_code=204)
