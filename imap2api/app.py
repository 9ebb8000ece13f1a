"""The ASGI application: a landing page at /, REST under /api/ and /api/v1/, GraphQL (with GraphiQL) at
/graphql."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request, WebSocket
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from strawberry.fastapi import GraphQLRouter

from imap2api import __version__, health, landing
from imap2api.admin import favicon, mount_admin
from imap2api.config import settings
from imap2api.graphiql import ExplorerGraphQLRouter, mount_assets
from imap2api.graphiql.openapi_pages import mount_openapi_pages
from imap2api.graphql.context import Context, authenticate
from imap2api.graphql.schema import schema
from imap2api.graphql.websocket import PROTOCOLS as WEBSOCKET_PROTOCOLS
from imap2api.logs import RequestIdMiddleware
from imap2api.metrics import MetricsMiddleware
from imap2api.rest import auth as rest_auth
from imap2api.rest import oauth2 as rest_oauth2
from imap2api.rest.api import api_router
from imap2api.rest.deps import current_user
from imap2api.rest.errors import install_error_handlers
from imap2api.security_headers import install_security_headers
from imap2api.throttling import BodyTooLarge, LimitsMiddleware, Throttle
from imap2api.timeouts import RequestTimeoutMiddleware

log = logging.getLogger("imap2api")

# The OpenAPI security scheme of the REST API, so that Swagger UI's "Authorize" sends the token.
TOKEN_SCHEME = "Token"
TOKEN_SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    # Markdown in Swagger UI: in backticks, <key> is shown rather than taken for a tag.
    "description": '`Token <key>`: the word "Token", a space, then a key from `POST /api-token-auth/`.',
}


async def graphql_context(request: Request = None, websocket: WebSocket = None) -> Context:  # type: ignore[assignment]
    """Build the GraphQL context for an HTTP request or a websocket."""
    connection = request if request is not None else websocket
    header = connection.headers.get("authorization") if connection is not None else None
    user, error = await authenticate(header)
    return Context(user=user, auth_error=error, websocket=websocket)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Start the in-process worker in embedded mode, and stop it on shutdown."""
    if settings.embedded:
        from imap2api.workers.embedded import start_embedded_worker, stop_embedded_worker

        start_embedded_worker()
        try:
            yield
        finally:
            stop_embedded_worker()
    else:
        yield


def create_app(*, run_worker: bool = True) -> FastAPI:
    """Assemble the application."""
    app = FastAPI(
        title="imap2api",
        version=__version__,
        description="IMAP mailboxes mirrored into SQL, served over GraphQL and REST.",
        lifespan=lifespan if run_worker else None,
        docs_url=None,  # served by mount_openapi_pages, with local assets
        redoc_url=None,
    )
    # Added first so it runs inside CORS: throttled answers still carry CORS headers.
    # One throttle per app: HTTP requests, websocket handshakes and websocket operations share it.
    app.state.throttle = Throttle()
    app.add_middleware(LimitsMiddleware, throttle=app.state.throttle)
    # Around the budgets (their lookups are bounded too), inside metrics, request ids and CORS.
    app.add_middleware(RequestTimeoutMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    origins = settings.cors_origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins if origins else ["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"],
    )
    install_error_handlers(app)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, __: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"detail": "Request body is too large."}, status_code=413)

    app.include_router(landing.router)
    app.include_router(health.router)
    app.add_route("/favicon.ico", favicon, include_in_schema=False)
    app.include_router(rest_auth.router)
    app.include_router(rest_oauth2.callback_router)
    app.include_router(api_router, prefix="/api")
    # The same routes again: /api/ is the documented one (README, docs/rest.md), so /openapi.json
    # and Swagger UI list each operation once.
    app.include_router(api_router, prefix="/api/v1", include_in_schema=False)
    # Our GraphiQL page (assets served locally, token field) instead of Strawberry's CDN-loading one.
    graphql: GraphQLRouter[Any, Any] = ExplorerGraphQLRouter(
        schema, context_getter=graphql_context, subscription_protocols=WEBSOCKET_PROTOCOLS
    )
    app.include_router(graphql, prefix="/graphql", include_in_schema=False)
    mount_assets(app)
    mount_openapi_pages(app)
    mount_admin(app)
    _document_as_served(app)
    install_security_headers(app)
    return app


def _document_as_served(app: FastAPI) -> None:
    """/openapi.json as served: no automatic 422s (DRF answers 400), the Token scheme where one is needed."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            authenticated = _token_operations(app)
            for path, operations in spec.get("paths", {}).items():
                for method, operation in operations.items():
                    if not isinstance(operation, dict):
                        continue
                    operation.get("responses", {}).pop("422", None)
                    if (path, method) in authenticated:
                        operation["security"] = [{TOKEN_SCHEME: []}]
            components = spec.setdefault("components", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(name, None)
            components.setdefault("securitySchemes", {})[TOKEN_SCHEME] = TOKEN_SECURITY_SCHEME
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _token_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every documented route that authenticates its caller by token."""
    # FastAPI 0.165 keeps included routers as such (app.routes no longer lists their routes) and
    # offers iter_route_contexts to walk them, prefixes applied; older versions list APIRoutes.
    walk: Callable[[list[BaseRoute]], Iterable[Any]] | None = getattr(
        fastapi.routing, "iter_route_contexts", None
    )
    routes: Iterable[Any] = walk(app.routes) if walk is not None else app.routes
    found: set[tuple[str, str]] = set()
    for route in routes:
        if not isinstance(getattr(route, "original_route", route), APIRoute):
            continue
        if route.include_in_schema and _needs_token(route.dependant):
            found.update((route.path_format, method.lower()) for method in route.methods or ())
    return found


def _needs_token(dependant: Dependant) -> bool:
    """Whether ``current_user`` is among a route's dependencies, however deep."""
    return any(
        dependency.call is current_user or _needs_token(dependency) for dependency in dependant.dependencies
    )
