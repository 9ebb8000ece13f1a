"""``/tokens/``: list and revoke the caller's own API tokens (keys are never shown again)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.pagination import PAGE_PARAMETERS, page_number, page_size, paginated
from imap2api.rest.schemas import ERRORS, documented
from imap2api.rest.wire import JSONRoute, iso_z

router = APIRouter(prefix="/tokens", tags=["tokens"], route_class=JSONRoute)

LIST = """query($page: Int!, $pageSize: Int) { apiTokens(page: $page, pageSize: $pageSize) {
  count page hasNext hasPrevious results { id name prefix createdAt lastUsedAt expiresAt } } }"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) }"


class ApiTokenOut(BaseModel):
    """One API token, without its key."""

    id: int
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None


class ApiTokenList(BaseModel):
    """A page of the caller's tokens, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[ApiTokenOut]


def to_rest(token: dict[str, Any]) -> dict[str, Any]:
    """GraphQL ApiToken → its JSON object."""
    return {
        "id": int(token["id"]),
        "name": token["name"],
        "prefix": token["prefix"],
        "created_at": iso_z(token["createdAt"]),
        "last_used_at": iso_z(token["lastUsedAt"]),
        "expires_at": iso_z(token["expiresAt"]),
    }


@router.get(
    "/",
    response_model=None,
    responses=documented(ApiTokenList),
    openapi_extra={"parameters": PAGE_PARAMETERS},
)
async def list_tokens(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The caller's API tokens, newest first."""
    params = request.query_params
    variables = {"page": page_number(params.get("page")), "pageSize": page_size(params.get("page_size"))}
    data = (await execute(LIST, variables, user=user))["apiTokens"]
    return paginated(request, data, [to_rest(token) for token in data["results"]])


@router.delete("/{token_id}/", status_code=204, response_class=Response, responses=ERRORS)
async def revoke_token(token_id: str, user: CurrentUser) -> Response:
    """Revoke one of the caller's tokens (the one making this request included)."""
    await execute(REVOKE, {"id": token_id}, user=user)
    return Response(status_code=204)
