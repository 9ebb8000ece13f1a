"""``/imap-servers/{id}/sync-runs/`` and ``/sync-runs/{id}/``: a server's sync runs (newest first), one run.

Each route runs one GraphQL operation (``syncRunHistory``, ``syncRun``). A run of another user's
server is a 404, as its server is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from imap2api.models import SyncRunPublic
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.pagination import PAGE_ARGUMENTS, PAGE_PARAMETERS, PAGE_VARIABLES
from imap2api.rest.resource import list_page
from imap2api.rest.schemas import SYNC_RUN_IDS, SyncRunList, SyncRunOut, documented
from imap2api.rest.shapes import RestOutput
from imap2api.rest.wire import JSONRoute

# No prefix: the list lives under its server, the run on its own.
router = APIRouter(tags=["sync-runs"], route_class=JSONRoute)

RUN = RestOutput(SyncRunPublic, first=("id", "imap_server"), ids=SYNC_RUN_IDS)
FIELDS = RUN.selection

LIST = f"""query({PAGE_VARIABLES}, $server: ID!) {{
  syncRunHistory({PAGE_ARGUMENTS}, imapServer: $server) {{
    count page hasNext hasPrevious results {{ {FIELDS} }} }} }}"""
GET = f"query($id: ID!) {{ syncRun(id: $id) {{ {FIELDS} }} }}"


def to_rest(data: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL SyncRun → the REST object."""
    run = RUN.to_rest(data)
    # GraphQL carries bytes_fetched as a Float (its Int is 32-bit); JSON clients expect an integer.
    run["bytes_fetched"] = int(run["bytes_fetched"])
    return run


@router.get(
    "/imap-servers/{server_id}/sync-runs/",
    response_model=None,
    responses=documented(SyncRunList),
    openapi_extra={"parameters": PAGE_PARAMETERS},
)
async def list_sync_runs(server_id: str, request: Request, user: CurrentUser) -> dict[str, Any]:
    """A server's sync runs, newest first, paginated: status, counts, error, missing_folders."""
    return await list_page(request, user, LIST, "syncRunHistory", to_rest, server=server_id)


@router.get("/sync-runs/{run_id}/", response_model=None, responses=documented(SyncRunOut))
async def get_sync_run(run_id: str, user: CurrentUser) -> dict[str, Any]:
    """One sync run of one of the caller's servers."""
    return to_rest((await execute(GET, {"id": run_id}, user=user))["syncRun"])
