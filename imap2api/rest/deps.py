"""Typed FastAPI dependencies: the caller, and a runner for the route's GraphQL operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from imap2api.graphql.context import Context, authenticate
from imap2api.graphql.schema import schema
from imap2api.models import User
from imap2api.rest.errors import ApiError, not_authenticated, not_found
from imap2api.rest.wire import to_snake_case

STATUS_BY_CODE = {
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "VALIDATION_ERROR": 400,
    # The answer would pass a per-request bound: the same request would fail again, so a 4xx.
    "RESULT_TOO_LARGE": 400,
    "QUERY_TOO_COMPLEX": 400,
}


async def current_user(request: Request) -> User:
    """The user named by the request's token, or a 401 in DRF's words."""
    user, error = await authenticate(request.headers.get("authorization"))
    if user is None:
        raise not_authenticated(error.message if error else "Invalid token.")
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def error_to_api_error(error: dict[str, Any]) -> ApiError:
    """Map one GraphQL error (as a dict) onto the REST status and body."""
    extensions = error.get("extensions") or {}
    code = extensions.get("code", "")
    if code == "VALIDATION_ERROR":
        fields = {
            to_snake_case(name): messages for name, messages in (extensions.get("fields") or {}).items()
        }
        return ApiError(400, fields or {"non_field_errors": [error["message"]]})
    if code == "NOT_FOUND":
        return not_found()
    if code == "INVALID_PAGE":
        return ApiError(404, {"detail": "Invalid page."})
    if code == "UNAUTHENTICATED":
        return not_authenticated(error["message"])
    if isinstance(extensions.get("status"), int) and 400 <= extensions["status"] < 500:
        # A Refused: its own status, {"detail", "code"}, and Retry-After when it says when.
        retry = extensions.get("retryAfter")
        headers = {"Retry-After": str(retry)} if retry is not None else {}
        return ApiError(extensions["status"], {"detail": error["message"], "code": code}, headers)
    if code == "GRAPHQL_VALIDATION_FAILED":
        # The route built a variable GraphQL refuses (e.g. out of range): the request's fault.
        return ApiError(400, {"detail": error["message"]})
    status = STATUS_BY_CODE.get(code, 500)
    return ApiError(status, {"detail": error["message"] if status < 500 else "Internal server error."})


async def execute(
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    user: User | None = None,
    on_error: Callable[[dict[str, Any]], ApiError | None] | None = None,
    request: Request | None = None,
) -> dict[str, Any]:
    """Run one GraphQL operation as ``user`` and return its data, or raise the REST error.

    ``on_error`` may map a route's own error codes first (e.g. a failed sync to a 502); ``request``
    is the REST request, for resolvers that need its base URL.
    """
    context = Context(user=user)
    context.request = request
    result = await schema.execute(query, variable_values=variables, context_value=context)
    if result.errors:
        formatted = dict(result.errors[0].formatted)
        mapped = on_error(formatted) if on_error else None
        raise mapped or error_to_api_error(formatted)
    return result.data or {}
