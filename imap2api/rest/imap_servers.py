"""``/imap-servers/``: list, create, read, update, delete, sync and test IMAP accounts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from imap2api.crud.servers import WRITABLE
from imap2api.enums import SyncStatus
from imap2api.models import ImapServerCreate, ImapServerPublic
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.errors import ApiError, ordered
from imap2api.rest.resource import Resource, add_resource_routes
from imap2api.rest.schemas import ImapServerIn, ImapServerList, ImapServerOut, SyncResult, documented
from imap2api.rest.shapes import RestInput, RestOutput, refused
from imap2api.rest.wire import JSONRoute, coerce_fields, read_body
from imap2api.validation import validate_server

router = APIRouter(prefix="/imap-servers", tags=["imap-servers"], route_class=JSONRoute)

# Derived from the models: a field added there is asked for, coerced and shown here without a change.
SERVER = RestOutput(ImapServerPublic)
SERVER_INPUT = RestInput(ImapServerCreate)
SERVER_FIELDS = SERVER.selection
FIELD_TYPES = SERVER_INPUT.field_types
TO_GRAPHQL = SERVER_INPUT.to_camel
to_rest = SERVER.to_rest

CREATE = f"mutation($input: ImapServerInput!) {{ createImapServer(input: $input) {{ {SERVER_FIELDS} }} }}"
TEST = """mutation($input: ImapServerInput!) { testImapServer(input: $input) {
  ok folders capabilities error code } }"""
SYNC = """mutation($id: ID!, $wait: Boolean!) { syncImapServer(id: $id, wait: $wait) {
  id status progressDone progressTotal foldersSynced messagesNew messagesUpdated messagesDeleted
  error errorCode } }"""


async def _input(request: Request, user: Any, server_id: str | None = None) -> dict[str, Any]:
    """The request body as a GraphQL ImapServerInput."""
    data = coerce_fields(await read_body(request), FIELD_TYPES)
    invalid = SERVER_INPUT.invalid_choices(data)
    if invalid:
        # GraphQL cannot carry a value its enum lacks: the shared rules give the body's whole verdict
        # (after the server's lookup, so that an unknown server is still a 404).
        current = None
        if server_id is not None:
            stored = to_rest((await execute(GET, {"id": server_id}, user=user))["imapServer"])
            current = {name: stored[name] for name in WRITABLE}
        raise refused(lambda: validate_server(data, current=current), invalid)
    return SERVER_INPUT.to_graphql(data)


_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ImapServerIn.model_json_schema()}},
    }
}


class ConnectionTestResult(BaseModel):
    """The outcome of ``POST /imap-servers/test/``: ``ok`` and the folders, or the error and its code."""

    ok: bool
    folders: list[str] | None = Field(None, description="when ok: the selectable folders' names")
    capabilities: list[str] | None = Field(None, description="when ok: the server's capabilities, sorted")
    error: str | None = Field(None, description="when not ok: why")
    code: str | None = Field(None, description="when not ok: IMAP_AUTH_FAILED, IMAP_TLS_FAILED...")


class OwnPathRoute(JSONRoute):
    """A route on a path that the resource's ``/{server_id}/`` routes match too (``test`` read as an id):
    it takes every method but OPTIONS, and refuses those not its own with DRF's 405 and its own Allow."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """A full match for any method on the path (OPTIONS excepted: methods.py answers it)."""
        match, child = super().matches(scope)
        if match is Match.PARTIAL and scope.get("method") != "OPTIONS":
            return Match.FULL, child
        return match, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route, or answer 405 (the app's handler would name the id routes' methods too)."""
        if scope["method"] in (self.methods or set()):
            await super().handle(scope, receive, send)
            return
        refused = JSONResponse(
            {"detail": f'Method "{scope["method"]}" not allowed.'},
            status_code=405,
            headers={"Allow": ", ".join(ordered({*(self.methods or set()), "OPTIONS"}))},
        )
        await refused(scope, receive, send)


async def check_server_connection(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Log in with the settings of a new server and list its folders; nothing is stored.

    200 whether the login worked or not (``ok``, and ``code`` when not); 400 for invalid settings.
    """
    data = await execute(TEST, {"input": await _input(request, user)}, user=user)
    result = data["testImapServer"]
    if result["ok"]:
        return {"ok": True, "folders": result["folders"], "capabilities": result["capabilities"]}
    return {"ok": False, "error": result["error"], "code": result["code"]}


# Before the resource's /{server_id}/ routes, which would read "test" as an id.
router.add_api_route(
    "/test/",
    check_server_connection,
    methods=["POST"],
    name="test_server",
    response_model=None,
    responses=documented(ConnectionTestResult),
    openapi_extra=_BODY,
    route_class_override=OwnPathRoute,
)
DOCUMENTS = add_resource_routes(
    router,
    Resource(
        stem="imapServer",
        selection=SERVER_FIELDS,
        to_rest=to_rest,
        read_input=_input,
        path_id="server_id",
        names=("server", "servers"),
        one_model=ImapServerOut,
        list_model=ImapServerList,
        body=_BODY,
        docs={
            "list": "The caller's IMAP servers, paginated.",
            "get": "One IMAP account.",
            "change": "Change an IMAP account; only the fields sent change.",
            "delete": "Remove an IMAP account and all of its mail.",
        },
    ),
)
GET = DOCUMENTS["get"]


@router.post(
    "/", status_code=201, response_model=None, responses=documented(ImapServerOut, 201), openapi_extra=_BODY
)
async def create_server(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Add an IMAP account; the password is stored encrypted and never returned."""
    data = await execute(CREATE, {"input": await _input(request, user)}, user=user)
    return to_rest(data["createImapServer"])


def _sync_message(status: str, *, waited: bool) -> str:
    """What the answer says of the run: queued, already running (joined), still running (the wait ended)."""
    if status == SyncStatus.SUCCESS:
        return "Email sync completed"
    if status == SyncStatus.RUNNING:
        return "Email sync still running" if waited else "Email sync already running"
    if status == SyncStatus.ERROR:
        return "Email sync failed"
    return "Email sync queued"


def _sync_failed(error: dict[str, Any]) -> ApiError | None:
    """A waited sync that failed: 502 with the reason, in the shape of the success body."""
    extensions = error.get("extensions") or {}
    code = extensions.get("code", "")
    if code.startswith(("IMAP_", "SYNC_", "SECRET_", "WORKER_", "LEASE_", "OAUTH2_")):
        run = extensions.get("syncRun")
        return ApiError(
            502,
            {
                "status": "error",
                "message": error["message"],
                "code": code,
                "sync_run": int(run) if run else None,
            },
        )
    return None


@router.post(
    "/{server_id}/sync/",
    response_model=None,
    responses={**documented(SyncResult), 202: {"model": SyncResult}, 502: {"model": SyncResult}},
)
async def sync_server(server_id: str, user: CurrentUser, wait: str = "true") -> Response | dict[str, Any]:
    """Sync now. Waits for the sync by default; ``?wait=false`` answers 202 at once."""
    waited = wait.lower() not in ("false", "0", "no")
    data = await execute(SYNC, {"id": server_id, "wait": waited}, user=user, on_error=_sync_failed)
    run = data["syncImapServer"]
    status = SyncStatus[run["status"]].value
    body = {
        "status": status,
        "message": _sync_message(status, waited=waited),
        "sync_run": int(run["id"]),
        "messages_new": run["messagesNew"],
        "messages_updated": run["messagesUpdated"],
        "messages_deleted": run["messagesDeleted"],
    }
    if status == SyncStatus.SUCCESS:
        return body
    return JSONResponse(body, status_code=202)
