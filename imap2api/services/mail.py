"""The mirrored mail, read: lists with search and filters, details, threads, folders, statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session

from imap2api.crud import emails as crud_emails
from imap2api.crud.common import Page
from imap2api.errors import NotFound, ValidationFailed
from imap2api.mail.search import SearchSyntaxError, parse_search
from imap2api.models import Email
from imap2api.services import servers
from imap2api.services.paging import page_number, page_size
from imap2api.services.principal import Principal

SERVER_CHOICE_ERROR = "Select a valid choice. That choice is not one of the available choices."


@dataclass(frozen=True)
class EmailQuery:
    """What a list of emails (or of threads) asks for; every field optional."""

    q: str | None = None
    folder: str | None = None
    imap_server: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    ordering: str | None = None
    page: int = 1
    page_size: int | None = None
    last_page: bool = False


def _filters(session: Session, actor: Principal, query: EmailQuery) -> crud_emails.EmailFilters:
    """Validate a query into the crud filters (field errors under the REST names)."""
    assert actor.user_id is not None
    # Stored text never holds NUL (PostgreSQL cannot), so a NUL in a filter can only mean nothing.
    text = (query.q or "").replace("\x00", "")
    search = None
    if text:
        try:
            search = parse_search(text)
        except SearchSyntaxError as exc:
            raise ValidationFailed({"q": [str(exc)]}) from None
    return crud_emails.EmailFilters(
        owner_id=actor.user_id,
        search=search,
        folder=(query.folder or "").replace("\x00", "") or None,
        server_id=servers.referenced(session, actor, query.imap_server, message=SERVER_CHOICE_ERROR),
        date_from=query.date_from,
        date_to=query.date_to,
    )


def page(session: Session, actor: Principal, query: EmailQuery, *, threaded: bool) -> Page[Any]:
    """One page of the user's emails; with ``threaded`` each conversation once, as its newest."""
    return crud_emails.list_emails(
        session,
        filters=_filters(session, actor, query),
        ordering=query.ordering,
        page=page_number(query.page, last=query.last_page),
        page_size=page_size(query.page_size),
        threaded=threaded,
    )


def get(session: Session, actor: Principal, email_id: int) -> Email:
    """One of the user's emails."""
    assert actor.user_id is not None
    return crud_emails.get_email(session, owner_id=actor.user_id, email_id=email_id)


def thread_of(session: Session, actor: Principal, email_id: int, *, limit: int) -> list[Any]:
    """The first ``limit`` emails of the thread an email belongs to, in date order."""
    email = get(session, actor, email_id)
    threads = crud_emails.emails_by_thread(
        session, owner_id=email.owner_id, thread_ids=[email.thread_id], limit=limit
    )
    return threads[email.thread_id]


def _scope(session: Session, actor: Principal, server_id: int | None) -> int | None:
    """An optional server argument, checked to be the user's."""
    return None if server_id is None else servers.get(session, actor, server_id).id


def folders(session: Session, actor: Principal, server_id: int | None = None) -> list[str]:
    """Names of the mirrored folders, INBOX first (of every server of the user's, or of one)."""
    assert actor.user_id is not None
    return crud_emails.folder_names(
        session, owner_id=actor.user_id, server_id=_scope(session, actor, server_id)
    )


def statistics(session: Session, actor: Principal, server_id: int | None = None) -> dict[str, Any]:
    """Totals: emails, distinct threads, emails per folder."""
    assert actor.user_id is not None
    return crud_emails.statistics(
        session, owner_id=actor.user_id, server_id=_scope(session, actor, server_id)
    )


def require_thread_visible(actor: Principal, members: list[Any]) -> list[Any]:
    """A thread's members as loaded, or NotFound when there are none or they are not the user's."""
    if not members or not actor.may_act_for(members[0].owner_id):
        raise NotFound()
    return members
