"""Reading the mirror: filtered, searched, ordered and paginated emails, threads, folders, statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, literal_column, not_, or_, text
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col, select

from imap2api.crud import search_index
from imap2api.crud.common import Page, like_pattern, paginate
from imap2api.errors import NotFound
from imap2api.mail.search import SearchQuery, TextTerm
from imap2api.models import Attachment, Email, Folder, ImapServer, ServerCount

_CHUNK = 500
_WALK_FROM = 2000  # matches above which a page in date order walks the date index (SQLite)
SEARCHED = ("subject", "sender", "recipient", "body_text")
ORDERINGS = {"date", "subject", "sender", "folder", "created_at"}
# Lists never load bodies: they can be megabytes each; details ask for them separately.
LIST_COLUMNS = tuple(
    column
    for column in Email.__table__.columns  # type: ignore[attr-defined]
    if column.name not in ("body_text", "body_html")
)


@dataclass(frozen=True)
class EmailFilters:
    """The list filters of apidoc: owner-scoped, all optional."""

    owner_id: int
    search: SearchQuery | None = None
    folder: str | None = None
    server_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None


def _day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def _fts_phrase(text_value: str) -> str:
    """An FTS5 phrase literal (double quotes doubled)."""
    return '"' + text_value.replace('"', '""') + '"'


def _fts_term(term: TextTerm) -> str:
    """One term as an FTS5 query: a phrase, limited to the term's columns if it names any."""
    if not term.fields:
        return _fts_phrase(term.text)
    return "(" + " OR ".join(f"{{{name}}} : {_fts_phrase(term.text)}" for name in term.fields) + ")"


def _fts_condition(terms: Sequence[TextTerm], entity: Any, by_date: bool = False) -> ColumnElement[bool]:
    """Emails holding every one of ``terms`` (SQLite, 3 characters or more each).

    One FTS5 MATCH for all of them, so FTS5 intersects the terms itself, plus the emails still
    queued for the index (checked directly), so results never lag the indexer. The trigram index is
    a case-insensitive (Unicode-folded) substring match. ``by_date`` hides the id from the planner
    (``id + 0``), so that a page walks the date index and tests each email against the matches.
    """
    match = " AND ".join(_fts_term(term) for term in terms)
    indexed: Any = (
        select(literal_column("rowid"))
        .select_from(text("emails_fts"))
        .where(text("emails_fts MATCH :match").bindparams(bindparam("match", match, unique=True)))
    )
    queued = search_index.pending_match([(term.text, term.fields or SEARCHED) for term in terms])
    subject = entity.id + 0 if by_date else entity.id
    condition: ColumnElement[bool] = subject.in_(indexed.union_all(queued))
    return condition


def _term_condition(term: TextTerm, dialect: str, entity: Any = Email) -> ColumnElement[bool]:
    """One text term as SQL, served by the dialect's trigram index."""
    fields = term.fields or SEARCHED
    if dialect == "sqlite" and len(term.text) >= 3:
        condition = _fts_condition([term], entity)
    elif dialect == "postgresql":
        # pg_trgm GIN indexes (ILIKE) for indexed emails, a direct check of those still waiting.
        condition = search_index.postgres_condition(entity, term.text, tuple(fields))
    else:
        # Short terms on SQLite scan: the trigram index cannot serve fewer than 3 characters.
        pattern = like_pattern(term.text)
        condition = or_(*(getattr(entity, name).ilike(pattern, escape="\\") for name in fields))
    return not_(condition) if term.negated else condition


def _together(terms: Sequence[TextTerm], dialect: str) -> list[TextTerm]:
    """The terms one FTS5 MATCH serves together: on SQLite, those not negated, of 3 characters or more."""
    return [term for term in terms if dialect == "sqlite" and not term.negated and len(term.text) >= 3]


def _text_conditions(
    terms: Sequence[TextTerm], dialect: str, entity: Any, by_date: bool = False
) -> list[ColumnElement[bool]]:
    """The text terms as SQL: on SQLite the plain (not negated) ones in one index lookup."""
    together = _together(terms, dialect)
    alone = [term for term in terms if term not in together]
    conditions = [_fts_condition(together, entity, by_date)] if together else []
    return conditions + [_term_condition(term, dialect, entity) for term in alone]


def _conditions(
    filters: EmailFilters, dialect: str, entity: Any = Email, by_date: bool = False
) -> list[ColumnElement[bool]]:
    """Every WHERE condition the filters call for, on ``entity`` (the table or an alias of it)."""
    conditions: list[ColumnElement[bool]] = [entity.owner_id == filters.owner_id]
    if filters.server_id is not None:
        conditions.append(entity.imap_server_id == filters.server_id)
    if filters.folder:
        conditions.append(entity.folder == filters.folder)
    if filters.date_from:
        conditions.append(entity.date >= _day_start(filters.date_from))
    if filters.date_to and filters.date_to < date.max:  # inclusive: the whole day counts
        conditions.append(entity.date < _day_start(filters.date_to + timedelta(days=1)))
    search = filters.search
    if search is not None:
        conditions += _text_conditions(search.terms, dialect, entity, by_date)
        for name, negated in search.folders:
            same = func.lower(entity.folder) == name.lower()
            conditions.append(not_(same) if negated else same)
        if search.has_attachment is not None:
            conditions.append(entity.has_attachments == search.has_attachment)
        if search.seen is not None:
            conditions.append(entity.seen == search.seen)
        if search.flagged is not None:
            conditions.append(entity.flagged == search.flagged)
        if search.after:
            conditions.append(entity.date >= _day_start(search.after))
        if search.before:
            conditions.append(entity.date < _day_start(search.before))
    return conditions


def _order_by(ordering: str | None) -> list[Any]:
    """ORDER BY for an apidoc ordering (``-date`` default); unknown fields fall back, as DRF does."""
    fields = [part.strip() for part in (ordering or "").split(",") if part.strip().lstrip("-") in ORDERINGS]
    if not fields:
        fields = ["-date"]
    clauses = [
        col(getattr(Email, name.lstrip("-"))).desc()
        if name.startswith("-")
        else col(getattr(Email, name)).asc()
        for name in fields
    ]
    # A stable tie-break keeps pages from overlapping.
    clauses.append(col(Email.id).desc() if fields[0].startswith("-") else col(Email.id).asc())
    return clauses


def _newest_per_thread(filters: EmailFilters, dialect: str) -> ColumnElement[bool]:
    """A condition keeping, of each thread, only its newest matching email.

    Each candidate row is tested for a newer match in its thread through the (owner, thread,
    date) index, so a page in date order reads about as many rows as it shows.
    """
    newer = aliased(Email)
    return ~exists().where(
        col(newer.thread_id) == col(Email.thread_id),
        or_(
            col(newer.date) > col(Email.date),
            and_(col(newer.date) == col(Email.date), col(newer.id) > col(Email.id)),
        ),
        *_conditions(filters, dialect, newer),
    )


def _thread_total(session: Session, conditions: Sequence[ColumnElement[bool]]) -> int:
    """How many distinct threads the emails matching ``conditions`` belong to.

    Counted over a GROUP BY, not count(DISTINCT): PostgreSQL sorts every row for a DISTINCT
    aggregate, where grouping walks the (owner, thread, date) index or hashes.
    """
    grouped = select(col(Email.thread_id)).where(*conditions).group_by(col(Email.thread_id)).subquery()
    total: int = session.exec(select(func.count()).select_from(grouped)).one()
    return total


def _by_place_only(filters: EmailFilters) -> bool:
    """Whether the filters name nothing but the owner, a server and a folder: the kept counts answer."""
    # Compared whole, so that a filter added to EmailFilters later is never counted as no filter.
    return replace(filters, server_id=None, folder=None) == EmailFilters(owner_id=filters.owner_id)


def _servers_of(filters: EmailFilters) -> Any:
    """The ids of the servers the filters reach (the owner's, or the one named), as a subquery."""
    servers = select(ImapServer.id).where(ImapServer.owner_id == filters.owner_id)
    if filters.server_id is not None:
        servers = servers.where(ImapServer.id == filters.server_id)
    return servers


def _kept_email_total(session: Session, filters: EmailFilters) -> int:
    """How many emails the owner, server and folder filters match, summed from the folders' kept counts."""
    statement = select(func.coalesce(func.sum(Folder.email_count), 0)).where(
        col(Folder.imap_server_id).in_(_servers_of(filters))
    )
    if filters.folder:
        statement = statement.where(Folder.name == filters.folder)
    return int(session.exec(statement).one())


def _kept_thread_total(session: Session, filters: EmailFilters) -> int:
    """How many threads the owner's (or one server's) emails form, summed from the servers' kept counts.

    Thread ids are random per thread (``imap2api.mail.threading``), so no two servers share one.
    """
    statement = select(func.coalesce(func.sum(ServerCount.thread_count), 0)).where(
        col(ServerCount.imap_server_id).in_(_servers_of(filters))
    )
    return int(session.exec(statement).one())


def list_emails(
    session: Session,
    *,
    filters: EmailFilters,
    ordering: str | None,
    page: int,
    page_size: int,
    threaded: bool = False,
) -> Page[Any]:
    """One page of email rows (without bodies); ``threaded`` keeps each thread's newest match only."""
    dialect = session.get_bind().dialect.name
    conditions = _conditions(filters, dialect)
    count = None
    if threaded and _by_place_only(filters) and not filters.folder:
        count = _kept_thread_total(session, filters)
    elif threaded:
        # One row per thread: counting threads needs no per-thread pick.
        count = _thread_total(session, conditions)
    elif _by_place_only(filters):
        count = _kept_email_total(session, filters)
    elif _by_date(filters, dialect, ordering):
        count = session.exec(select(func.count()).select_from(Email).where(and_(*conditions))).one()
        if count > _WALK_FROM:
            conditions = _conditions(filters, dialect, by_date=True)
    statement: Select[*tuple[Any, ...]] = select(*LIST_COLUMNS).where(and_(*conditions))
    if threaded:
        statement = statement.where(_newest_per_thread(filters, dialect))
    return paginate(
        session, statement.order_by(*_order_by(ordering)), page=page, page_size=page_size, count=count
    )


def _by_date(filters: EmailFilters, dialect: str, ordering: str | None) -> bool:
    """Whether a page in date order may do better walking the date index than sorting the matches.

    SQLite drives a search from the index's matches (each looked up, all sorted): right for a rare
    word, about a second for one in most of 200k emails, where walking the newest emails and
    testing each against the matches stops after a page. The count, needed anyway, tells which.
    """
    search = filters.search
    return (
        search is not None
        and bool(_together(search.terms, dialect))
        and _order_by(ordering)[0].element.key == "date"
    )


def get_email(session: Session, *, owner_id: int, email_id: int) -> Email:
    """One email with every field, if it is the owner's."""
    email = session.get(Email, email_id)
    if email is None or email.owner_id != owner_id:
        raise NotFound()
    return email


def places(
    session: Session, *, owner_id: int | None, email_ids: Sequence[int]
) -> list[tuple[int, int, str, int, int]]:
    """(id, server, folder, UIDVALIDITY, UID) of the owner's emails among ``email_ids`` (None: anyone's)."""
    found: list[tuple[int, int, str, int, int]] = []
    for start in range(0, len(email_ids), 500):
        statement = sa_select(
            col(Email.id),
            col(Email.imap_server_id),
            col(Email.folder),
            col(Email.uidvalidity),
            col(Email.uid),
        ).where(col(Email.id).in_(list(email_ids[start : start + 500])))
        if owner_id is not None:
            statement = statement.where(col(Email.owner_id) == owner_id)
        found += [(row[0], row[1], row[2], row[3], row[4]) for row in session.execute(statement).all()]
    return found


def emails_by_thread(
    session: Session, *, owner_id: int, thread_ids: Sequence[str], limit: int
) -> dict[str, list[Any]]:
    """The first ``limit`` emails of each thread, in date order, as list rows (without bodies).

    A mailing-list thread can hold thousands of messages: each thread is cut in SQL, so the rows
    read stay bounded by the limit whatever the thread's size.
    """
    found: dict[str, list[Any]] = {thread_id: [] for thread_id in thread_ids}
    for start in range(0, len(thread_ids), _CHUNK):
        chunk = list(thread_ids[start : start + _CHUNK])
        order = (col(Email.date), col(Email.id))
        position = func.row_number().over(partition_by=Email.thread_id, order_by=order)
        ranked = (
            select(*LIST_COLUMNS)
            .add_columns(position.label("position"))
            .where(Email.owner_id == owner_id, col(Email.thread_id).in_(chunk))
            .subquery()
        )
        rows = session.exec(
            select(*(ranked.c[column.name] for column in LIST_COLUMNS))
            .where(ranked.c.position <= limit)
            .order_by(ranked.c.date, ranked.c.id)
        )
        for email in rows:
            found[email.thread_id].append(email)
    return found


def thread_counts(session: Session, *, owner_id: int, thread_ids: Sequence[str]) -> dict[str, int]:
    """How many emails each thread holds."""
    counts: dict[str, int] = {}
    for start in range(0, len(thread_ids), _CHUNK):
        chunk = list(thread_ids[start : start + _CHUNK])
        rows = session.exec(
            select(Email.thread_id, func.count())
            .where(Email.owner_id == owner_id, col(Email.thread_id).in_(chunk))
            .group_by(Email.thread_id)
        )
        counts.update(dict(rows.all()))
    return counts


def body_chars(session: Session, *, owner_id: int, email_ids: Sequence[int]) -> int:
    """How many characters the text and HTML bodies of the given emails hold together (read in SQL)."""
    total = 0
    for start in range(0, len(email_ids), _CHUNK):
        chunk = list(email_ids[start : start + _CHUNK])
        size = func.coalesce(func.sum(func.length(Email.body_text) + func.length(Email.body_html)), 0)
        total += session.exec(select(size).where(Email.owner_id == owner_id, col(Email.id).in_(chunk))).one()
    return int(total)


def bodies(session: Session, *, owner_id: int, email_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Text and HTML bodies of the given emails."""
    found: dict[int, tuple[str, str]] = {}
    for start in range(0, len(email_ids), _CHUNK):
        chunk = list(email_ids[start : start + _CHUNK])
        rows = session.exec(
            select(Email.id, Email.body_text, Email.body_html).where(
                Email.owner_id == owner_id, col(Email.id).in_(chunk)
            )
        )
        found.update({email_id or 0: (body_text, body_html) for email_id, body_text, body_html in rows})
    return found


def attachments_of(session: Session, *, email_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    """Attachment metadata of the given emails (callers have checked ownership of the emails)."""
    found: dict[int, list[Attachment]] = {email_id: [] for email_id in email_ids}
    for start in range(0, len(email_ids), _CHUNK):
        chunk = list(email_ids[start : start + _CHUNK])
        for attachment in session.exec(
            select(Attachment).where(col(Attachment.email_id).in_(chunk)).order_by(col(Attachment.id))
        ):
            found[attachment.email_id].append(attachment)
    return found


def folder_names(session: Session, *, owner_id: int, server_id: int | None = None) -> list[str]:
    """Names of the mirrored folders, INBOX first, then alphabetically."""
    statement = (
        select(Folder.name)
        .distinct()
        .join(ImapServer, col(ImapServer.id) == col(Folder.imap_server_id))
        .where(ImapServer.owner_id == owner_id)
    )
    if server_id is not None:
        statement = statement.where(Folder.imap_server_id == server_id)
    names = list(session.exec(statement))
    return sorted(names, key=lambda name: (name.upper() != "INBOX", name.lower(), name))


def statistics(session: Session, *, owner_id: int, server_id: int | None = None) -> dict[str, Any]:
    """Total emails, distinct threads, and emails per folder, from the counts the database keeps
    (migration 0019): a few rows per server read, however much mail there is."""
    filters = EmailFilters(owner_id=owner_id, server_id=server_id)
    emails = func.sum(Folder.email_count)
    per_folder = dict(
        session.exec(
            select(Folder.name, emails)
            .where(col(Folder.imap_server_id).in_(_servers_of(filters)))
            .group_by(Folder.name)
            .having(emails > 0)
            .order_by(Folder.name)
        ).all()
    )
    return {
        "total_emails": sum(per_folder.values()),
        "total_threads": _kept_thread_total(session, filters),
        "folders": per_folder,
    }
