"""What every admin view shares: read-mostly defaults, links between views, choices for forms."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from markupsafe import Markup, escape
from sqladmin import ModelView
from sqladmin.filters import ForeignKeyFilter
from sqladmin.flash import Flash
from starlette.requests import Request
from starlette.responses import RedirectResponse

from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import run_db
from imap2api.errors import Imap2ApiError
from imap2api.services.principal import Principal

T = TypeVar("T")


class AdminView(ModelView):
    """Defaults for imap2api's views: newest first, no bulk export of the mirror."""

    can_export = False
    page_size = 25
    column_default_sort = [("id", True)]


def link(request: Request, identity: str, pk: Any, text: Any = None) -> Markup:
    """An HTML link to an object's details page in the admin."""
    if pk is None:
        return Markup("")
    url = request.url_for("admin:details", identity=identity, pk=pk)
    return Markup('<a href="{}">{}</a>').format(str(url), text if text is not None else f"#{pk}")


def link_to(identity: str, attribute: str) -> Any:
    """A list/details formatter that links an id column to the object it names."""

    def formatter(model: Any, _attribute: Any, request: Request) -> Markup:
        return link(request, identity, getattr(model, attribute))

    return formatter


def list_url(request: Request, identity: str, **filters: Any) -> str:
    """The list page of a view, filtered (``webhook_id=3``)."""
    return str(request.url_for("admin:list", identity=identity).include_query_params(**filters))


def back(request: Request, identity: str) -> RedirectResponse:
    """Go back where an action was started: the referring admin page, else the view's list."""
    referer = request.headers.get("referer", "")
    target = referer if referer.startswith(str(request.base_url)) else list_url(request, identity)
    return RedirectResponse(target, status_code=302)


def acting(request: Request) -> Principal:
    """The logged-in admin (admin.auth lets only admins this far) as the services' principal."""
    return Principal.of_admin(int(request.session.get("user_id") or 0))


async def each_selected(request: Request, change: Any, ids: list[int]) -> list[int]:
    """Run a service function returning a row on each id, one transaction each (one failure keeps the
    ones before it, and no transaction holds every selected row's locks); returns the rows' ids."""
    return [(await run_db(change, acting(request), object_id)).id or 0 for object_id in ids]


async def act_on_selected(request: Request, change: Any, *, identity: str, done: str) -> RedirectResponse:
    """``each_selected`` on the action's ids, then back: flashing ``done`` and the rows' ids (``#1, #2``),
    or the error that stopped it."""
    try:
        changed = await each_selected(request, change, selected_ids(request))
    except Imap2ApiError as exc:
        Flash.error(request, exc.message)
        return back(request, identity)
    Flash.success(request, f"{done} {', '.join(f'#{row}' for row in changed)}.")
    return back(request, identity)


def selected_ids(request: Request) -> list[int]:
    """The numeric primary keys an action was started on (``?pks=1,2``); junk is ignored."""
    return [int(pk) for pk in request.query_params.get("pks", "").split(",") if pk.strip().isdigit()]


def excerpt(limit: int) -> Any:
    """A list formatter showing at most ``limit`` characters of a text column."""

    def formatter(model: Any, attribute: str) -> str:
        value = getattr(model, attribute) or ""
        return value if len(value) <= limit else value[: limit - 1] + "…"

    return formatter


def preformatted(model: Any, attribute: str) -> Markup:
    """A details formatter keeping the line breaks of a long text (escaped)."""
    value = getattr(model, attribute) or ""
    return Markup('<pre style="white-space: pre-wrap; max-height: 40em; overflow: auto">{}</pre>').format(
        escape(value)
    )


class IdFilter(ForeignKeyFilter):
    """A foreign-key filter that ignores a non-numeric value instead of failing the page."""

    def __init__(self, foreign_key: Any, foreign_display_field: Any, **options: Any) -> None:
        # SQLModel types a column attribute as its value (int, str): sqladmin's hints cannot see it.
        super().__init__(foreign_key, foreign_display_field, **options)

    async def get_filtered_query(self, query: Any, value: Any, model: Any) -> Any:
        """Filter by the id, or not at all when it is not a number."""
        if value is not None and not str(value).isdigit() and value not in ("", "__all"):
            return query
        return await super().get_filtered_query(query, value, model)


async def expected(pending: Awaitable[T]) -> T:
    """Await a change; an expected failure (validation, not found) becomes the message the admin
    sees above the form (sqladmin shows a ValueError's text)."""
    try:
        return await pending
    except Imap2ApiError as exc:
        raise ValueError(exc.message) from None


async def user_choices() -> list[tuple[int, str]]:
    """(id, label) of every user, for an owner field."""
    return await run_db(crud_users.user_choices)


async def server_choices() -> list[tuple[int, str]]:
    """(id, label) of every IMAP server, for a server filter field."""
    return await run_db(crud_servers.server_choices)
