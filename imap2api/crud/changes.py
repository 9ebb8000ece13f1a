"""The change feed's writes and reads: a per-user change sequence, email stamps, tombstones.

Every transaction that writes a user's emails takes the next value of the user's sequence once
(``next_seq``: ``change_counters`` bumped with an upsert ``... RETURNING value``) and stamps every
email row it inserts or changes with it (``change_seq``; ``created_seq`` too on insert); an email
the sync deletes leaves a tombstone with it. A first sync of 200k messages writes no row per email
beyond the emails themselves: one counter bump per batch transaction.

Why a reader never misses a change: the counter row is locked by the bump until the transaction
commits (PostgreSQL's row lock; SQLite has one writer at a time anyway), so the next transaction
of the same user waits for that commit before it gets the next value. Sequences therefore commit
in order, and a committed counter value C means every sequence up to C is committed. A read takes
C first and looks only at sequences up to C: nothing it skips can commit later under a lower
sequence, and a transaction that commits meanwhile (C + 1...) is left whole for the next read,
whatever the isolation level and however many statements the read takes. Lock order: a sync
locks its server's row (``keep_lease``) before the counter; nothing takes them the other way round
(``change_counters`` has no foreign key, so deleting a user does not lock it).

Where emails are written, the writes stamp them: ``crud.mirror`` (insert_emails, set_flags,
move_email; deletions through ``record_deletions``) and ``crud.threads`` (merges). A new write of
Email rows must add ``stamp``/``stamp_new`` values, or a tombstone before a delete.
``crud.events.record_event`` takes the sequence too: its payload's ``cursor`` is after the transaction.

A position in the feed is (sequence, email id): a batch of 200 emails shares one sequence, so a
page may end inside it. (seq, ``END``) is the end of a whole sequence. Emails only move forward
(a change restamps them with a higher sequence), so a page boundary never skips one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, event, func, literal, select, tuple_, update
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col

from imap2api.crud.common import dialect_insert
from imap2api.ids import MAX_ID
from imap2api.models import ChangeCounter, Email, EmailTombstone, Folder, ImapServer, utcnow

END = MAX_ID  # the position after every email id of a sequence
_SEQS = "imap2api.change_seqs"  # session.info: owner id -> the sequence this transaction took
_CURSOR = re.compile(r"v1:(\d{1,18})(?::(\d{1,10}))?")


@dataclass(frozen=True, order=True)
class Position:
    """A place in a user's feed: everything at or before (seq, email id) was read."""

    seq: int
    email_id: int = END


def encode_cursor(position: Position) -> str:
    """The opaque cursor string of a position."""
    text = f"v1:{position.seq}" if position.email_id == END else f"v1:{position.seq}:{position.email_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position | None:
    """The position a cursor names, or None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor.strip() + "=" * (-len(cursor.strip()) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    match = _CURSOR.fullmatch(text)
    if match is None:
        return None
    email_id = int(match[2]) if match[2] is not None else END
    if not 1 <= email_id <= END:
        return None
    return Position(int(match[1]), email_id)


# --- writes -------------------------------------------------------------------------------------


def _forget(session: Session, _transaction: SessionTransaction) -> None:
    """A transaction (or savepoint) ended: the next one takes sequences of its own."""
    session.info.pop(_SEQS, None)


def next_seq(session: Session, owner_id: int) -> int:
    """The sequence of this transaction's changes to ``owner_id``'s emails (taken once per transaction).

    The counter row stays locked until commit: the owner's writers queue here, in sequence order.
    """
    seqs: dict[int, int] | None = session.info.get(_SEQS)
    if seqs is None:
        if not session.info.get(_SEQS + ".listening"):
            event.listen(session, "after_transaction_end", _forget)
            session.info[_SEQS + ".listening"] = True
        seqs = session.info[_SEQS] = {}
    if owner_id in seqs:
        return seqs[owner_id]
    table = ChangeCounter.__table__  # type: ignore[attr-defined]
    statement = dialect_insert(session, table).values(owner_id=owner_id, value=1, pruned_seq=0)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.owner_id], set_={"value": table.c.value + 1}
    ).returning(table.c.value)
    seq = int(session.execute(statement).scalar_one())
    seqs[owner_id] = seq
    return seq


def stamp(session: Session, owner_id: int) -> dict[str, int]:
    """The values an UPDATE of the owner's emails adds: ``change_seq``."""
    return {"change_seq": next_seq(session, owner_id)}


def stamp_new(session: Session, owner_id: int) -> dict[str, int]:
    """The values of an inserted email: ``change_seq`` and ``created_seq``."""
    seq = next_seq(session, owner_id)
    return {"change_seq": seq, "created_seq": seq}


def owner_of_folder(session: Session, folder_id: int) -> int:
    """The user a folder's mail belongs to."""
    statement = (
        select(col(ImapServer.owner_id))
        .join(Folder, col(Folder.imap_server_id) == col(ImapServer.id))
        .where(col(Folder.id) == folder_id)
    )
    return int(session.execute(statement).scalar_one())


def owner_of_server(session: Session, server_id: int) -> int:
    """The user a server belongs to."""
    statement = select(col(ImapServer.owner_id)).where(col(ImapServer.id) == server_id)
    return int(session.execute(statement).scalar_one())


def record_deletions(session: Session, condition: ColumnElement[bool]) -> None:
    """Write a tombstone for each email matching ``condition``, before the caller deletes them.

    One INSERT ... SELECT per owner (in practice one): a folder of 50k emails is two statements.
    """
    owners = session.execute(select(col(Email.owner_id)).where(condition).distinct()).scalars().all()
    now = utcnow()
    for owner_id in owners:
        seq = next_seq(session, owner_id)
        rows = select(
            col(Email.id),
            col(Email.owner_id),
            col(Email.imap_server_id),
            literal(seq),
            literal(now, EmailTombstone.__table__.c.created_at.type),  # type: ignore[attr-defined]
        ).where(condition, col(Email.owner_id) == owner_id)
        table = EmailTombstone.__table__  # type: ignore[attr-defined]
        session.execute(
            table.insert().from_select(["email_id", "owner_id", "imap_server_id", "seq", "created_at"], rows)
        )


def prune_tombstones(session: Session, *, before: datetime) -> int:
    """Delete tombstones written before ``before``, whole sequences at a time; returns how many.

    Each owner's ``pruned_seq`` moves to the highest sequence pruned: cursors before its end expire.
    """
    horizons = session.execute(
        select(col(EmailTombstone.owner_id), func.max(col(EmailTombstone.seq)))
        .where(col(EmailTombstone.created_at) < before)
        .group_by(col(EmailTombstone.owner_id))
    ).all()
    pruned = 0
    for owner_id, horizon in horizons:
        session.execute(
            update(ChangeCounter)
            .where(col(ChangeCounter.owner_id) == owner_id, col(ChangeCounter.pruned_seq) < horizon)
            .values(pruned_seq=horizon)
        )
        gone = delete(EmailTombstone).where(
            col(EmailTombstone.owner_id) == owner_id, col(EmailTombstone.seq) <= horizon
        )
        pruned += session.exec(gone).rowcount or 0
    return pruned


# --- reads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counter:
    """A user's committed sequence and the end of their pruned tombstones."""

    value: int
    pruned_seq: int


def counter(session: Session, owner_id: int) -> Counter:
    """The owner's committed counter (0, 0 before their first change)."""
    row = session.execute(
        select(col(ChangeCounter.value), col(ChangeCounter.pruned_seq)).where(
            col(ChangeCounter.owner_id) == owner_id
        )
    ).first()
    return Counter(0, 0) if row is None else Counter(int(row[0]), int(row[1]))


@dataclass(frozen=True)
class Entry:
    """One email in the feed: alive (with the sequence it was created at) or destroyed."""

    position: Position
    created_seq: int | None  # None: a tombstone


def entries_after(session: Session, *, owner_id: int, after: Position, upto: int, limit: int) -> list[Entry]:
    """The owner's first ``limit`` entries after ``after``, up to sequence ``upto``, in (seq, id) order.

    An id found alive and as a tombstone at once (never, while ids are not reused) counts once.
    """
    seq, email_id = col(Email.change_seq), col(Email.id)
    alive = session.execute(
        select(seq, email_id, col(Email.created_seq))
        .where(col(Email.owner_id) == owner_id, tuple_(seq, email_id) > tuple_(after.seq, after.email_id))
        .where(seq <= upto)
        .order_by(seq, email_id)
        .limit(limit)
    ).all()
    dead_seq, dead_id = col(EmailTombstone.seq), col(EmailTombstone.email_id)
    dead = session.execute(
        select(dead_seq, dead_id)
        .where(
            col(EmailTombstone.owner_id) == owner_id,
            tuple_(dead_seq, dead_id) > tuple_(after.seq, after.email_id),
        )
        .where(dead_seq <= upto)
        .order_by(dead_seq, dead_id)
        .limit(limit)
    ).all()
    entries: dict[Position, Entry] = {}
    for row_seq, row_id in dead:
        place = Position(int(row_seq), int(row_id))
        entries[place] = Entry(place, None)
    for row_seq, row_id, created in alive:
        place = Position(int(row_seq), int(row_id))
        entries[place] = Entry(place, int(created))
    return [entries[place] for place in sorted(entries)][:limit]


def stamped(rows: Sequence[dict[str, Any]], values: dict[str, int]) -> list[dict[str, Any]]:
    """Insert rows with the stamp of ``stamp_new`` (new dicts; the caller's stay as they are)."""
    return [{**row, **values} for row in rows]
