"""``POST /api-token-auth/``: DRF's obtain-token view, answered through the ``tokenAuth`` mutation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from imap2api.rest.deps import execute
from imap2api.rest.errors import ApiError
from imap2api.rest.methods import add_options_and_head
from imap2api.rest.wire import JSONRoute, read_body

router = APIRouter(tags=["auth"], route_class=JSONRoute)

TOKEN_AUTH = """
mutation TokenAuth($username: String!, $password: String!) {
  tokenAuth(username: $username, password: $password) { token }
}
"""


class TokenRequest(BaseModel):
    """Credentials, sent as JSON or as a form."""

    username: str
    password: str


class TokenResponse(BaseModel):
    """The issued token."""

    token: str


@router.post(
    "/api-token-auth/",
    response_model=TokenResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": TokenRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
            },
        }
    },
    responses={400: {"description": "Missing fields or wrong credentials"}},
)
async def obtain_token(request: Request) -> dict[str, str]:
    """Exchange a username and password for a token."""
    data = await read_body(request)
    missing = {
        name: ["This field is required."] for name in ("username", "password") if data.get(name) is None
    }
    if missing:
        raise ApiError(400, missing)
    fields = {name: data[name] for name in ("username", "password")}
    wrong_type = {
        name: ["Not a valid string."] for name, value in fields.items() if not isinstance(value, str)
    }
    if wrong_type:
        raise ApiError(400, wrong_type)
    result = await execute(TOKEN_AUTH, fields)
    return {"token": result["tokenAuth"]["token"]}


add_options_and_head(router, names={"/api-token-auth/": "Obtain Auth Token"})  # DRF's view name
