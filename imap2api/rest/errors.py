"""Errors in Django REST Framework's shapes, and the handlers that render them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

log = logging.getLogger("imap2api.rest")
# DRF lists allowed methods in Django's http_method_names order.
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")


class ApiError(Exception):
    """Raised by a route to answer with a status, a JSON body and optional headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_authenticated(detail: str) -> ApiError:
    """The 401 DRF answers for missing or bad token credentials."""
    return ApiError(401, {"detail": detail}, {"WWW-Authenticate": "Token"})


def not_found() -> ApiError:
    """The 404 for an object that does not exist or is someone else's."""
    return ApiError(404, {"detail": "Not found."})


def ordered(methods: set[str]) -> list[str]:
    """Methods in DRF's order; any other method after them, alphabetically."""
    return [method for method in METHOD_ORDER if method in methods] + sorted(methods - set(METHOD_ORDER))


def allowed_methods(request: Request) -> list[str]:
    """Every method a route of the app answers on the request's path: Starlette's own ``Allow`` names
    only the first route whose path matched, and each method of a resource is a route of its own."""
    methods = set()
    for method in METHOD_ORDER:
        # Asked of the routes as the router asks them; nested dicts copied, as matching writes to them.
        probe = {
            key: dict(value) if isinstance(value, dict) else value for key, value in request.scope.items()
        }
        probe["method"] = method
        if any(
            not isinstance(route, Mount) and route.matches(probe)[0] is Match.FULL
            for route in request.app.router.routes
        ):
            methods.add(method)
    return ordered(methods)


def _validation_body(exc: RequestValidationError) -> dict[str, list[str]]:
    """Turn FastAPI's validation errors into ``{"field": ["message"]}``."""
    body: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        if error.get("type") == "json_invalid":
            return {"detail": [f"JSON parse error - {error.get('msg', 'invalid JSON')}"]}
        name = loc[0] if loc else "non_field_errors"
        message = "This field is required." if error.get("type") == "missing" else error.get("msg", "")
        body.setdefault(name, []).append(message)
    return body


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error DRF's JSON shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = f'Method "{request.method}" not allowed.'
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
        elif exc.status_code == 404:
            detail = "Not found."
        else:
            detail = str(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        body = _validation_body(exc)
        if "detail" in body:
            return JSONResponse({"detail": body["detail"][0]}, status_code=400)
        return JSONResponse(body, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error."}, status_code=500)
