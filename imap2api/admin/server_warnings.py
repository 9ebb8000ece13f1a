"""A server's warning in the admin: the folders its last finished run found missing (``folders_to_sync``
names the server has no folder of, synced around and kept on the run as ``missing_folders``)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.requests import Request

from imap2api.crud import sync_runs as crud_runs
from imap2api.db import run_db

# Why a name can be missing though the mailbox seems to have it; the worker's log names the folder
# meant when only the case differs (sync.engine), which the run row does not keep.
HINT = (
    "Names are exact, case included: Test connection lists the server's folders. "
    "The other folders were synced."
)


async def last_missing_folders(request: Request, servers: list[Any]) -> None:
    """Look up, for these servers, what ``MissingFolders`` shows (one query for the page)."""
    ids = sorted({server.id for server in servers} - {None})
    request.state.missing_folders = await run_db(crud_runs.missing_folders_of, ids) if ids else {}


class MissingFolders:
    """The last result of a server, with a warning naming the folders its last run did not find
    (``brief``: for a list cell; else with the hint). Reads what ``last_missing_folders`` found."""

    def __init__(self, *, brief: bool) -> None:
        self.brief = brief

    def __call__(self, model: Any, attribute: str, request: Request) -> Markup:
        """The cell or the details value."""
        status = Markup("{}").format(getattr(model, attribute) or "")
        missing: list[str] = getattr(request.state, "missing_folders", {}).get(model.id, [])
        if not missing:
            return status
        names = ", ".join(repr(name) for name in missing)
        warning = Markup(
            '<div class="text-warning missing-folders" title="folders_to_sync">'
            "⚠ No such folder on the server: {}{}</div>"
        ).format(names, "" if self.brief else Markup(' <span class="text-muted">{}</span>').format(HINT))
        return status + warning
