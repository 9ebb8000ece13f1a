"""What every admin view shares: read-mostly defaults, links between views, choices for forms."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from markupsafe import Markup, escape
from sqladmin import ModelView
from sqladmin.filters import AllUniqueStringValuesFilter, ForeignKeyFilter
from sqladmin.flash import Flash
from sqladmin.formatters import BASE_FORMATTERS
from sqladmin.pagination import Pagination
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import RedirectResponse

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import run_db
from imap2api.errors import Imap2ApiError, ValidationFailed
from imap2api.models import Folder, ImapServer, User, Webhook
from imap2api.services.principal import Principal
from imap2api.throttling import Throttle, Verdict

T = TypeVar("T")

# What a link to another view shows beside the id: the model and column naming its objects.
LABELS: dict[str, tuple[Any, Any]] = {
    "user": (User, User.username),
    "imap-server": (ImapServer, ImapServer.name),
    "webhook": (Webhook, Webhook.url),
}
LABEL_LIMIT = 60  # characters of a label (a webhook's URL can be long)
LONG_WORD = 16  # characters: a longer word in a list cell may break anywhere
# Seconds between reloads of a list whose rows change on their own (runs, deliveries, the outbox).
REFRESH_SECONDS = 10


def wrapped(text: str) -> Markup | str:
    """Text for a list cell: a long word (an address, a URL) may break anywhere, other words stay whole
    (``static/admin.css``: breaking every word lets the table squeeze short columns mid-word)."""
    if any(len(word) > LONG_WORD for word in text.split()):
        return Markup('<span class="wrap-anywhere">{}</span>').format(text)
    return text


def short_time(value: datetime) -> Markup:
    """A list formatter for a time: to the second, the full value in a tooltip."""
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        value.isoformat(), str(value), value.strftime("%Y-%m-%d %H:%M:%S")
    )


class AdminView(ModelView):
    """Defaults for imap2api's views: newest first, no bulk export of the mirror, named links.

    Set ``refresh_seconds`` on a view whose rows change on their own: its list page reloads itself
    (``static/refresh.js``) while the admin is not selecting, typing or looking at another tab.
    """

    can_export = False
    page_size = 25
    column_default_sort = [("id", True)]
    column_type_formatters = {**BASE_FORMATTERS, datetime: short_time, str: wrapped}
    list_template = "imap2api/list.html"
    details_template = "imap2api/details.html"
    refresh_seconds = 0

    async def get_object_for_details(self, request: Request) -> Any:
        """The object, with the names of the objects its links point to (one query per kind)."""
        found = await super().get_object_for_details(request)
        if found is not None:
            await remember_labels(request, self.column_formatters_detail.values(), [found])
        return found

    async def list(self, request: Request) -> Pagination:
        """A page of rows, with the names their links show looked up for the whole page at once."""
        page = await super().list(request)
        await remember_labels(request, self.column_formatters.values(), page.rows)
        return page


def link(request: Request, identity: str, pk: Any, text: Any = None) -> Markup:
    """An HTML link to an object's details page in the admin."""
    if pk is None:
        return Markup("")
    url = request.url_for("admin:details", identity=identity, pk=pk)
    return Markup('<a href="{}">{}</a>').format(str(url), text if text is not None else f"#{pk}")


def labelled(label: str | None, pk: Any) -> Markup:
    """A link's text: the object's name and its id (only the id when the name is not known)."""
    if not label:
        return Markup("#{}").format(pk)
    short = label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"
    return Markup('{} <span class="text-muted">#{}</span>').format(wrapped(short), pk)


class LinkTo:
    """A list/details formatter that links an id column to the object it names, by name and id.

    The names come from ``request.state`` (``remember_labels``, run by ``AdminView`` for the whole
    page): a formatter runs on the event loop, once per row, and must not query.
    """

    def __init__(self, identity: str, attribute: str) -> None:
        self.identity = identity
        self.attribute = attribute

    def __call__(self, model: Any, _attribute: Any, request: Request) -> Markup:
        """The link of one row."""
        pk = getattr(model, self.attribute)
        known: dict[tuple[str, int], str] = getattr(request.state, "admin_labels", {})
        return link(request, self.identity, pk, labelled(known.get((self.identity, pk)), pk))


def link_to(identity: str, attribute: str) -> LinkTo:
    """A list/details formatter that links an id column to the object it names (``alice #3``)."""
    return LinkTo(identity, attribute)


def _labels(session: Session, wanted: dict[str, set[int]]) -> dict[tuple[str, int], str]:
    """The names of the wanted objects, by (identity, id): one query per kind of object."""
    found: dict[tuple[str, int], str] = {}
    for identity, ids in wanted.items():
        model, column = LABELS[identity]
        rows = session.exec(select(col(model.id), col(column)).where(col(model.id).in_(sorted(ids))))
        found.update(((identity, pk), str(label)) for pk, label in rows)
    return found


async def remember_labels(request: Request, formatters: Iterable[Any], rows: builtins.list[Any]) -> None:
    """Look up, for these rows, the names that their ``LinkTo`` formatters show."""
    wanted: dict[str, set[int]] = {}
    for formatter in formatters:
        if isinstance(formatter, LinkTo) and formatter.identity in LABELS:
            ids = {getattr(row, formatter.attribute) for row in rows} - {None}
            if ids:
                wanted.setdefault(formatter.identity, set()).update(ids)
    if wanted:
        known = getattr(request.state, "admin_labels", {})
        request.state.admin_labels = {**known, **await run_db(_labels, wanted)}


def list_url(request: Request, identity: str, **filters: Any) -> str:
    """The list page of a view, filtered (``webhook_id=3``)."""
    return str(request.url_for("admin:list", identity=identity).include_query_params(**filters))


def back(request: Request, identity: str) -> RedirectResponse:
    """Go back where an action was started: the referring admin page, else the view's list."""
    referer = request.headers.get("referer", "")
    target = referer if referer.startswith(str(request.base_url)) else list_url(request, identity)
    return RedirectResponse(target, status_code=302)


async def spend_api_budget(request: Request) -> Verdict | None:
    """Spend one request of the logged-in admin's API budget (admin pages spend none): for what the
    API charges too, such as a connection test. Returns the refusal when the budget is spent."""
    throttle: Throttle | None = getattr(request.app.state, "throttle", None)
    if throttle is None or not settings.rate_limit_enabled:
        return None
    verdict = await throttle.spend(*throttle.user_budget(acting(request).user_id or 0))
    return None if verdict.allowed else verdict


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
        Flash.error(request, admin_message(exc))
        return back(request, identity)
    Flash.success(request, f"{done} {', '.join(f'#{row}' for row in changed)}.")
    return back(request, identity)


def selected_ids(request: Request) -> list[int]:
    """The numeric primary keys an action was started on (``?pks=1,2``); junk is ignored."""
    return [int(pk) for pk in request.query_params.get("pks", "").split(",") if pk.strip().isdigit()]


def excerpt(limit: int) -> Any:
    """A list formatter showing at most ``limit`` characters of a text column."""

    def formatter(model: Any, attribute: str) -> Markup | str:
        value = getattr(model, attribute) or ""
        return wrapped(value if len(value) <= limit else value[: limit - 1] + "…")

    return formatter


def preformatted(model: Any, attribute: str) -> Markup:
    """A details formatter keeping the line breaks of a long text (escaped)."""
    value = getattr(model, attribute) or ""
    if not value:
        return Markup("")  # not an empty dark box
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


class FolderFilter(AllUniqueStringValuesFilter):
    """Filter mail by folder name (``INBOX`` of every server; the server filter narrows it)."""

    def __init__(self, column: Any, **options: Any) -> None:
        # SQLModel types a column attribute as its value (str): sqladmin's hints cannot see it.
        super().__init__(column, **{"title": "Folder", **options})

    async def lookups(
        self, request: Request, model: Any, run_query: Callable[[Any], Any]
    ) -> builtins.list[tuple[str, str]]:
        """Every folder name of every server, once: from the folders, not a scan of the mail."""
        names = await run_query(select(col(Folder.name)).distinct().order_by(col(Folder.name)))
        return [("__all", "All")] + [(str(name), str(name)) for (name,) in names]


class ExpectedFailure(ValueError):
    """An expected refusal (validation, not found) shown above a form: logged without a traceback."""


def admin_message(exc: Imap2ApiError) -> str:
    """The text a person sees for a refusal: field errors named by field, the others alone."""
    if not isinstance(exc, ValidationFailed):
        return exc.message
    return "; ".join(
        " ".join(messages) if field == "non_field_errors" else f"{field}: {' '.join(messages)}"
        for field, messages in exc.fields.items()
    )


async def expected(pending: Awaitable[T]) -> T:
    """Await a change; an expected failure (validation, not found) becomes the message the admin
    sees above the form (sqladmin shows a ValueError's text)."""
    try:
        return await pending
    except Imap2ApiError as exc:
        raise ExpectedFailure(admin_message(exc)) from None


class ExpectedFailureLog(logging.Filter):
    """Turn sqladmin's ``logger.exception`` of an ``ExpectedFailure`` into one INFO line: a refused
    form is the admin's typo, not the service's bug (anything else keeps its traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Downgrade the record when it carries an expected failure; always let it through."""
        failure = record.exc_info[1] if record.exc_info else None
        if isinstance(failure, ExpectedFailure):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg, record.args = "Admin change refused: %s", (str(failure),)
            record.exc_info, record.exc_text = None, None
        return True


EXPECTED_FAILURE_LOG = ExpectedFailureLog()


async def user_choices() -> list[tuple[int, str]]:
    """(id, label) of every user, for an owner field."""
    return await run_db(crud_users.user_choices)


async def server_choices() -> dict[int, list[tuple[int, str]]]:
    """(id, label) of every IMAP server, by owner id, for a server field (an owner's servers only)."""
    return await run_db(crud_servers.server_choices)
