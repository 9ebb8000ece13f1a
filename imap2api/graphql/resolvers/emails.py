"""Queries over the mirrored mail: lists with search and filters, details, threads, folders, statistics."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import strawberry

from imap2api.graphql.context import Context
from imap2api.graphql.types.email import WHOLE_THREAD, EmailType, FolderCount, Statistics, to_gql_email
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.ids import parse_id
from imap2api.services import mail

Info = strawberry.Info[Context, None]


async def _page(info: Info, query: mail.EmailQuery, *, threaded: bool) -> Page[EmailType]:
    """Run a list query for the caller and convert the page."""
    return to_gql_page(await info.context.run(mail.page, query, threaded=threaded), to_gql_email)


def _query(arguments: dict[str, Any]) -> mail.EmailQuery:
    """The list arguments of a resolver (named as ``EmailQuery``'s fields) as one query."""
    return mail.EmailQuery(
        **{field.name: arguments[field.name] for field in dataclasses.fields(mail.EmailQuery)}
    )


def _server(value: strawberry.ID | None) -> int | None:
    return None if value is None else parse_id(value)


LIST_ARGS_DOC = (
    "q: search (substring over subject, sender, recipient, body; Gmail operators from:, to:, subject:, "
    'in:, has:attachment, is:unread|read|starred, after:/before:YYYY-MM-DD, "phrases", -negation). '
    "ordering: date, subject, sender, folder, created_at, with - for descending (default -date). "
    "page: 1-based; lastPage: the last page, whatever page says. pageSize: default 50, at most 100."
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
        date_from: date | None = None,
        date_to: date | None = None,
        thread: bool = False,
        ordering: str | None = None,
        page: int = 1,
        page_size: int | None = None,
        last_page: bool = False,
    ) -> Page[EmailType]:
        """A page of emails; with ``thread`` each conversation appears once, as its newest message."""
        query = _query(locals())
        return await _page(info, query, threaded=thread)

    @strawberry.field(
        description="Conversations, each as its newest message with its threadCount. " + LIST_ARGS_DOC
    )
    async def threads(
        self,
        info: Info,
        q: str | None = None,
        folder: str | None = None,
        imap_server: strawberry.ID | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        ordering: str | None = None,
        page: int = 1,
        page_size: int | None = None,
        last_page: bool = False,
    ) -> Page[EmailType]:
        """A page of threads: ``emails`` with ``thread: true``."""
        query = _query(locals())
        return await _page(info, query, threaded=True)

    @strawberry.field(description="One email with every stored field.")
    async def email(self, info: Info, id: strawberry.ID) -> EmailType:
        """An email by id."""
        return to_gql_email(await info.context.run(mail.get, parse_id(id)))

    @strawberry.field(
        description="The emails of a thread (by thread id), in date order: the first `limit` "
        "(default and most: IMAP2API_MAX_THREAD_EMAILS).",
        metadata=WHOLE_THREAD.metadata,
    )
    async def thread(self, info: Info, id: str, limit: int | None = None) -> list[EmailType]:
        """A thread's emails; an unknown thread id is not found."""
        actor = info.context.principal
        members = await info.context.loaders.thread_emails.load((id, WHOLE_THREAD.clamp(limit)))
        return [to_gql_email(row) for row in mail.require_thread_visible(actor, members)]

    @strawberry.field(
        description="The thread an email belongs to, in date order (the email included): the "
        "first `limit` (default and most: IMAP2API_MAX_THREAD_EMAILS).",
        metadata=WHOLE_THREAD.metadata,
    )
    async def email_thread(
        self, info: Info, email_id: strawberry.ID, limit: int | None = None
    ) -> list[EmailType]:
        """The thread of an email."""
        members = await info.context.run(mail.thread_of, parse_id(email_id), limit=WHOLE_THREAD.clamp(limit))
        return [to_gql_email(row) for row in members]

    @strawberry.field(description="Names of the mirrored folders, INBOX first.")
    async def folders(self, info: Info, imap_server: strawberry.ID | None = None) -> list[str]:
        """Folder names of all the caller's servers, or of one."""
        return await info.context.run(mail.folders, _server(imap_server))

    @strawberry.field(description="Totals: emails, distinct threads, emails per folder.")
    async def statistics(self, info: Info, imap_server: strawberry.ID | None = None) -> Statistics:
        """Statistics of the caller's mirror, or of one server."""
        stats = await info.context.run(mail.statistics, _server(imap_server))
        return Statistics(
            total_emails=stats["total_emails"],
            total_threads=stats["total_threads"],
            folders=[FolderCount(name=name, count=count) for name, count in stats["folders"].items()],
        )
