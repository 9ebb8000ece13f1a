"""Queries over the mirrored mail: lists with search and filters, details, threads, folders, statistics."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import emails as crud_emails
from imap2api.crud import servers as crud_servers
from imap2api.crud.common import clamp_page_size
from imap2api.errors import NotFound, ValidationFailed
from imap2api.graphql.context import Context
from imap2api.graphql.ids import parse_id
from imap2api.graphql.types.email import WHOLE_THREAD, EmailType, FolderCount, Statistics, to_gql_email
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.mail.search import SearchSyntaxError, parse_search

Info = strawberry.Info[Context, None]
DATE_FORMAT_ERROR = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
SERVER_CHOICE_ERROR = "Select a valid choice. That choice is not one of the available choices."


def _parse_date(value: str | None, field_name: str, errors: dict[str, list[str]]) -> date | None:
    """A YYYY-MM-DD filter value, or an error message under its REST field name."""
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        errors[field_name] = [DATE_FORMAT_ERROR]
        return None


def _server_id(session: Session, *, owner_id: int, value: str | None) -> int | None:
    """The imapServer filter, which must name one of the caller's servers."""
    if value is None or value == "":
        return None
    try:
        server_id = parse_id(value)
        crud_servers.get_server(session, owner_id=owner_id, server_id=server_id)
    except NotFound:
        raise ValidationFailed({"imap_server": [SERVER_CHOICE_ERROR]}) from None
    return server_id


def _filters(session: Session, *, owner_id: int, args: dict[str, Any]) -> crud_emails.EmailFilters:
    """Validate the list arguments (messages keyed by their REST names, for the REST layer)."""
    errors: dict[str, list[str]] = {}
    # Stored text never holds NUL (PostgreSQL cannot), so a NUL in a filter can only mean nothing.
    for name in ("q", "folder"):
        if args.get(name):
            args[name] = args[name].replace("\x00", "")
    date_from = _parse_date(args.get("date_from"), "date_from", errors)
    date_to = _parse_date(args.get("date_to"), "date_to", errors)
    search = None
    if args.get("q"):
        try:
            search = parse_search(args["q"])
        except SearchSyntaxError as exc:
            errors["q"] = [str(exc)]
    if errors:
        raise ValidationFailed(errors)
    return crud_emails.EmailFilters(
        owner_id=owner_id,
        search=search,
        folder=args.get("folder") or None,
        server_id=_server_id(session, owner_id=owner_id, value=args.get("imap_server")),
        date_from=date_from,
        date_to=date_to,
    )


def _list(session: Session, *, owner_id: int, args: dict[str, Any], threaded: bool) -> Any:
    """Validate and run a list query in one session."""
    filters = _filters(session, owner_id=owner_id, args=args)
    size = clamp_page_size(args.get("page_size"), default=settings.page_size, maximum=settings.max_page_size)
    return crud_emails.list_emails(
        session,
        filters=filters,
        ordering=args.get("ordering"),
        page=args.get("page") or 1,
        page_size=size,
        threaded=threaded,
    )


def _thread_of(session: Session, *, owner_id: int, email_id: int, limit: int) -> list[Any]:
    """The first ``limit`` emails of the thread an email belongs to."""
    email = crud_emails.get_email(session, owner_id=owner_id, email_id=email_id)
    threads = crud_emails.emails_by_thread(
        session, owner_id=owner_id, thread_ids=[email.thread_id], limit=limit
    )
    return threads[email.thread_id]


def _server_scope(session: Session, *, owner_id: int, imap_server: str | None) -> int | None:
    """An optional server argument, checked to be the caller's."""
    if imap_server is None:
        return None
    return crud_servers.get_server(session, owner_id=owner_id, server_id=parse_id(imap_server)).id


def _folders(session: Session, *, owner_id: int, imap_server: str | None) -> list[str]:
    return crud_emails.folder_names(
        session,
        owner_id=owner_id,
        server_id=_server_scope(session, owner_id=owner_id, imap_server=imap_server),
    )


def _statistics(session: Session, *, owner_id: int, imap_server: str | None) -> dict[str, Any]:
    return crud_emails.statistics(
        session,
        owner_id=owner_id,
        server_id=_server_scope(session, owner_id=owner_id, imap_server=imap_server),
    )


async def _page(info: Info, args: dict[str, Any], *, threaded: bool) -> Page[EmailType]:
    """Run a list query for the caller and convert the page."""
    user = info.context.require_user()
    result = await info.context.db(_list, owner_id=user.id, args=args, threaded=threaded)
    return to_gql_page(result, to_gql_email)


LIST_ARGS_DOC = (
    "q: search (substring over subject, sender, recipient, body; Gmail operators from:, to:, subject:, "
    'in:, has:attachment, is:unread|read|starred, after:/before:YYYY-MM-DD, "phrases", -negation). '
    "ordering: date, subject, sender, folder, created_at, with - for descending (default -date). "
    "page: 1-based, -1 for the last page. pageSize: default 50, at most 100."
)


@strawberry.type
class EmailQuery:
    """Reads of the mirrored mail."""

    @strawberry.field(
        description="The caller's emails. " + LIST_ARGS_DOC + " thread: one row per conversation."
    )
    async def emails(
        self,
        info: Info,
        q: str | None = None,
        folder: str | None = None,
        imap_server: strawberry.ID | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        thread: bool = False,
        ordering: str | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> Page[EmailType]:
        """A page of emails; with ``thread`` each conversation appears once, as its newest message."""
        args = {
            "q": q,
            "folder": folder,
            "imap_server": imap_server,
            "date_from": date_from,
            "date_to": date_to,
            "ordering": ordering,
            "page": page,
            "page_size": page_size,
        }
        return await _page(info, args, threaded=thread)

    @strawberry.field(
        description="Conversations, each as its newest message with its threadCount. " + LIST_ARGS_DOC
    )
    async def threads(
        self,
        info: Info,
        q: str | None = None,
        folder: str | None = None,
        imap_server: strawberry.ID | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        ordering: str | None = None,
        page: int = 1,
        page_size: int | None = None,
    ) -> Page[EmailType]:
        """A page of threads: ``emails`` with ``thread: true``."""
        args = {
            "q": q,
            "folder": folder,
            "imap_server": imap_server,
            "date_from": date_from,
            "date_to": date_to,
            "ordering": ordering,
            "page": page,
            "page_size": page_size,
        }
        return await _page(info, args, threaded=True)

    @strawberry.field(description="One email with every stored field.")
    async def email(self, info: Info, id: strawberry.ID) -> EmailType:
        """An email by id."""
        user = info.context.require_user()
        return to_gql_email(
            await info.context.db(crud_emails.get_email, owner_id=user.id, email_id=parse_id(id))
        )

    @strawberry.field(
        description="The emails of a thread (by thread id), in date order: the first `limit` "
        "(default and most: IMAP2API_MAX_THREAD_EMAILS).",
        metadata=WHOLE_THREAD.metadata,
    )
    async def thread(self, info: Info, id: str, limit: int | None = None) -> list[EmailType]:
        """A thread's emails; an unknown thread id is not found."""
        user = info.context.require_user()
        members = await info.context.loaders.thread_emails.load((id, WHOLE_THREAD.clamp(limit)))
        if not members or members[0].owner_id != user.id:
            raise NotFound()
        return [to_gql_email(row) for row in members]

    @strawberry.field(
        description="The thread an email belongs to, in date order (the email included): the "
        "first `limit` (default and most: IMAP2API_MAX_THREAD_EMAILS).",
        metadata=WHOLE_THREAD.metadata,
    )
    async def email_thread(
        self, info: Info, email_id: strawberry.ID, limit: int | None = None
    ) -> list[EmailType]:
        """The thread of an email."""
        user = info.context.require_user()
        members = await info.context.db(
            _thread_of, owner_id=user.id, email_id=parse_id(email_id), limit=WHOLE_THREAD.clamp(limit)
        )
        return [to_gql_email(row) for row in members]

    @strawberry.field(description="Names of the mirrored folders, INBOX first.")
    async def folders(self, info: Info, imap_server: strawberry.ID | None = None) -> list[str]:
        """Folder names of all the caller's servers, or of one."""
        user = info.context.require_user()
        return await info.context.db(_folders, owner_id=user.id, imap_server=imap_server)

    @strawberry.field(description="Totals: emails, distinct threads, emails per folder.")
    async def statistics(self, info: Info, imap_server: strawberry.ID | None = None) -> Statistics:
        """Statistics of the caller's mirror, or of one server."""
        user = info.context.require_user()
        stats = await info.context.db(_statistics, owner_id=user.id, imap_server=imap_server)
        return Statistics(
            total_emails=stats["total_emails"],
            total_threads=stats["total_threads"],
            folders=[FolderCount(name=name, count=count) for name, count in stats["folders"].items()],
        )
