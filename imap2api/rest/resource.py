"""The routes every owned resource has on REST, made once: list, read, change, delete.

``add_resource_routes`` registers, for a GraphQL stem such as ``imapServer``, ``GET /`` (the
``imapServers`` page), ``GET``, ``PUT`` and ``PATCH`` (both partial, as apidoc documents PUT) and
``DELETE`` on ``/{id}/``, each running one GraphQL operation. Route names (and so OpenAPI
operation ids and summaries) are the resource's own, e.g. ``list_servers``, ``get_server``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Path, Request, Response

from imap2api.models import User
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.pagination import (
    PAGE_ARGUMENTS,
    PAGE_PARAMETERS,
    PAGE_VARIABLES,
    page_variables,
    paginated,
)
from imap2api.rest.schemas import ERRORS, documented

Convert = Callable[[dict[str, Any]], dict[str, Any]]
# Reads a request body into the GraphQL input (the id is the object's, on a change; None on create).
ReadInput = Callable[[Request, User, str | None], Awaitable[dict[str, Any]]]


async def list_page(
    request: Request, user: User, query: str, field: str, convert: Convert, **variables: Any
) -> dict[str, Any]:
    """Run a list operation for the request's ``?page=&page_size=`` and answer DRF's list body."""
    data = (await execute(query, {**variables, **page_variables(request.query_params)}, user=user))[field]
    return paginated(request, data, [convert(item) for item in data["results"]])


@dataclass(frozen=True)
class Resource:
    """One owned resource as REST shows it."""

    stem: str  # the GraphQL name: imapServer → imapServers, imapServer, updateImapServer...
    selection: str  # the GraphQL fields a REST object is made of
    to_rest: Convert
    read_input: ReadInput
    path_id: str  # the path parameter's name: server_id
    names: tuple[str, str]  # the route names' nouns, singular and plural: ("server", "servers")
    one_model: type
    list_model: type
    body: dict[str, Any]  # the OpenAPI request body of PUT and PATCH
    docs: dict[str, str]  # per route (list, get, change, delete): its description

    def documents(self) -> dict[str, str]:
        """The GraphQL operations of the routes."""
        kind = self.stem[0].upper() + self.stem[1:]
        return {
            "list": f"query({PAGE_VARIABLES}) {{ {self.stem}s({PAGE_ARGUMENTS}) {{"
            f" count page hasNext hasPrevious results {{ {self.selection} }} }} }}",
            "get": f"query($id: ID!) {{ {self.stem}(id: $id) {{ {self.selection} }} }}",
            "update": f"mutation($id: ID!, $input: {kind}Input!) {{"
            f" update{kind}(id: $id, input: $input) {{ {self.selection} }} }}",
            "delete": f"mutation($id: ID!) {{ delete{kind}(id: $id) }}",
        }


def add_resource_routes(router: APIRouter, resource: Resource) -> dict[str, str]:
    """Register the list, read, change and delete routes; returns the GraphQL documents they run."""
    documents = resource.documents()
    kind = resource.stem[0].upper() + resource.stem[1:]
    one, many = resource.names
    path = f"/{{{resource.path_id}}}/"
    object_path = Path(alias=resource.path_id)  # the id keeps its name in the path and in OpenAPI

    async def list_all(request: Request, user: CurrentUser) -> dict[str, Any]:
        return await list_page(request, user, documents["list"], f"{resource.stem}s", resource.to_rest)

    async def get_one(user: CurrentUser, object_id: str = object_path) -> dict[str, Any]:
        return resource.to_rest(
            (await execute(documents["get"], {"id": object_id}, user=user))[resource.stem]
        )

    async def change(request: Request, user: CurrentUser, object_id: str = object_path) -> dict[str, Any]:
        variables = {"id": object_id, "input": await resource.read_input(request, user, object_id)}
        return resource.to_rest((await execute(documents["update"], variables, user=user))[f"update{kind}"])

    async def delete(user: CurrentUser, object_id: str = object_path) -> Response:
        await execute(documents["delete"], {"id": object_id}, user=user)
        return Response(status_code=204)

    # The docstrings are what /openapi.json and OPTIONS (imap2api.rest.methods) describe a route by.
    list_all.__doc__, get_one.__doc__ = resource.docs["list"], resource.docs["get"]
    change.__doc__, delete.__doc__ = resource.docs["change"], resource.docs["delete"]
    one_object = documented(resource.one_model)
    router.add_api_route(
        "/",
        list_all,
        methods=["GET"],
        name=f"list_{many}",
        response_model=None,
        responses=documented(resource.list_model),
        openapi_extra={"parameters": PAGE_PARAMETERS},
    )
    router.add_api_route(
        path,
        get_one,
        methods=["GET"],
        name=f"get_{one}",
        response_model=None,
        responses=one_object,
    )
    for method in ("PUT", "PATCH"):
        router.add_api_route(
            path,
            change,
            methods=[method],
            name=f"{method.lower()}_{one}",
            response_model=None,
            responses=one_object,
            openapi_extra=resource.body,
        )
    router.add_api_route(
        path,
        delete,
        methods=["DELETE"],
        name=f"delete_{one}",
        status_code=204,
        response_class=Response,
        responses=ERRORS,
    )
    return documents
