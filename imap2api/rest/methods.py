"""HTTP methods as DRF answers them: OPTIONS with its metadata, and HEAD wherever GET is."""

from __future__ import annotations

import inspect
import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from imap2api.rest.deps import CurrentUser, current_user
from imap2api.rest.errors import ordered

RENDERS = ["application/json"]
# What rest.wire.read_body accepts.
PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]


def _words(segment: str) -> str:
    """``rotate-secret`` → ``Rotate Secret``."""
    return " ".join(word.capitalize() for word in re.split(r"[-_]", segment) if word)


def view_name(path: str) -> str:
    """The name DRF gives the view behind a router path: "Imap Server List", "... Instance", "Sync"."""
    parts = [part for part in path.strip("/").split("/") if part]
    resource = parts[0].removesuffix("s")
    if len(parts) == 1:
        return f"{_words(resource)} List"
    if len(parts) == 2 and parts[1].startswith("{"):
        return f"{_words(resource)} Instance"
    return _words(next(part for part in reversed(parts) if not part.startswith("{")))


def _needs_user(route: APIRoute) -> bool:
    """Whether the route authenticates its caller (then OPTIONS does too, as DRF's permissions do)."""
    return any(dependency.call is current_user for dependency in route.dependant.dependencies)


def _options_endpoint(body: dict[str, Any], allow: str, *, authenticated: bool) -> Any:
    """An OPTIONS handler answering ``body``; behind the token check when the resource is."""
    headers = {"Allow": allow}
    if authenticated:

        async def options_authenticated(_user: CurrentUser) -> JSONResponse:
            return JSONResponse(body, headers=headers)

        return options_authenticated

    async def options() -> JSONResponse:
        return JSONResponse(body, headers=headers)

    return options


def add_options_and_head(router: APIRouter, *, names: dict[str, str] | None = None) -> None:
    """Give every path of ``router`` an OPTIONS answer and a HEAD wherever it has GET, as DRF views do.

    Call once per router of routes (not on one that only includes others), after its last route;
    ``names`` overrides a path's view name. Neither method is in /openapi.json (nor in DRF's schemas).
    """
    by_path: dict[str, list[APIRoute]] = {}
    for route in router.routes:
        if isinstance(route, APIRoute):
            by_path.setdefault(route.path, []).append(route)
    for full_path, routes in by_path.items():
        path = full_path.removeprefix(router.prefix)  # add_api_route puts the prefix back
        methods: set[str] = set().union(*(route.methods or set() for route in routes))
        get = next((route for route in routes if "GET" in (route.methods or set())), None)
        if get is not None and "HEAD" not in methods:
            # Same handler: the server sends no body for HEAD, the headers are those of GET.
            router.add_api_route(
                path,
                get.endpoint,
                methods=["HEAD"],
                status_code=get.status_code,
                response_model=None,
                response_class=get.response_class,
                include_in_schema=False,
                route_class_override=APIRoute,
            )
            methods.add("HEAD")
        if "OPTIONS" in methods:
            continue
        methods.add("OPTIONS")
        described = get or routes[0]
        body = {
            "name": (names or {}).get(full_path) or view_name(full_path),
            "description": (inspect.getdoc(described.endpoint) or "").split("\n\n")[0],
            "renders": RENDERS,
            "parses": PARSES,
        }
        endpoint = _options_endpoint(
            body, ", ".join(ordered(methods)), authenticated=any(_needs_user(route) for route in routes)
        )
        router.add_api_route(
            path,
            endpoint,
            methods=["OPTIONS"],
            response_model=None,
            include_in_schema=False,
            route_class_override=APIRoute,
        )
