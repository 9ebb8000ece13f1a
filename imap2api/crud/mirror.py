"""Writes of the mirror: folders and their sync state, emails, attachments, flags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from imap2api.crud import changes as crud_changes
from imap2api.crud.common import insert_returning
from imap2api.models import Attachment, Email, Folder, utcnow

_CHUNK = 500


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """Slices small enough for an IN (...) list on every database."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def folders_of(session: Session, *, server_id: int) -> dict[str, Folder]:
    """The mirrored folders of a server, by name."""
    rows = session.exec(select(Folder).where(Folder.imap_server_id == server_id))
    return {folder.name: folder for folder in rows}


def ensure_folder(session: Session, *, server_id: int, name: str, delimiter: str, special_use: str) -> Folder:
    """The folder row for ``name``, created if missing, with its LIST attributes refreshed."""
    folder = session.exec(
        select(Folder).where(Folder.imap_server_id == server_id, Folder.name == name)
    ).first()
    if folder is None:
        folder = Folder(imap_server_id=server_id, name=name, delimiter=delimiter, special_use=special_use)
    else:
        folder.delimiter, folder.special_use = delimiter, special_use
    session.add(folder)
    session.flush()
    return folder


def save_folder_state(
    session: Session,
    *,
    folder_id: int,
    uidvalidity: int,
    uidnext: int | None,
    highestmodseq: int | None,
    message_count: int,
) -> None:
    """Record what the folder looked like when its sync completed."""
    session.exec(
        update(Folder)
        .where(col(Folder.id) == folder_id)
        .values(
            uidvalidity=uidvalidity,
            uidnext=uidnext,
            highestmodseq=highestmodseq,
            message_count=message_count,
            last_synced_at=utcnow(),
        )
    )


def stored_flags(
    session: Session, *, folder_id: int, uidvalidity: int, uids: Iterable[int] | None = None
) -> dict[int, str]:
    """UID → flags of the mirrored messages of one folder generation (only ``uids``, when given)."""
    statement = select(Email.uid, Email.flags).where(
        Email.folder_id == folder_id, Email.uidvalidity == uidvalidity
    )
    if uids is None:
        return dict(session.exec(statement).all())
    found: dict[int, str] = {}
    for chunk in _chunks(sorted(set(uids))):
        found.update(session.exec(statement.where(col(Email.uid).in_(chunk))).all())
    return found


def count_emails(session: Session, *, folder_id: int, uidvalidity: int) -> int:
    """How many messages of one folder generation are mirrored."""
    statement = (
        select(func.count())
        .select_from(Email)
        .where(Email.folder_id == folder_id, Email.uidvalidity == uidvalidity)
    )
    return int(session.exec(statement).one())


def stored_uids_from(session: Session, *, folder_id: int, uidvalidity: int, first_uid: int) -> set[int]:
    """The mirrored UIDs of one folder generation from ``first_uid`` up."""
    statement = select(Email.uid).where(
        Email.folder_id == folder_id, Email.uidvalidity == uidvalidity, col(Email.uid) >= first_uid
    )
    return set(session.exec(statement).all())


def highest_uid(session: Session, *, folder_id: int, uidvalidity: int) -> int | None:
    """The highest mirrored UID of one folder generation, or None when it holds nothing."""
    statement = select(func.max(Email.uid)).where(
        Email.folder_id == folder_id, Email.uidvalidity == uidvalidity
    )
    value = session.exec(statement).one()
    return int(value) if value is not None else None


def _message_ids_then_delete(session: Session, condition: Any) -> list[str]:
    """Delete the emails matching ``condition``, returning their Message-IDs."""
    message_ids = [mid for mid in session.exec(select(Email.message_id).where(condition)) if mid]
    crud_changes.record_deletions(session, condition)
    session.exec(delete(Email).where(condition))
    return message_ids


def delete_stale_generations(session: Session, *, folder_id: int, uidvalidity: int) -> list[str]:
    """Remove a folder's emails from any other UIDVALIDITY (the folder was recreated)."""
    condition = (col(Email.folder_id) == folder_id) & (col(Email.uidvalidity) != uidvalidity)
    return _message_ids_then_delete(session, condition)


def delete_folders(session: Session, *, folder_ids: Sequence[int]) -> list[str]:
    """Remove folders and their mail; returns the Message-IDs that went."""
    removed: list[str] = []
    for chunk in _chunks(list(folder_ids)):
        removed += _message_ids_then_delete(session, col(Email.folder_id).in_(chunk))
        session.exec(delete(Folder).where(col(Folder.id).in_(chunk)))
    return removed


def set_flags(session: Session, *, folder_id: int, uidvalidity: int, flags_by_uid: dict[int, str]) -> int:
    """Store new flags for messages of a folder; returns how many rows changed."""
    now = utcnow()
    owner_id = crud_changes.owner_of_folder(session, folder_id) if flags_by_uid else None
    seq = crud_changes.stamp(session, owner_id) if owner_id is not None else {}
    # One UPDATE per flag string, not per message: "mark all read" on 50k messages is a few statements.
    by_flags: dict[str, list[int]] = {}
    for uid, flags in flags_by_uid.items():
        by_flags.setdefault(flags, []).append(uid)
    for flags, uids in by_flags.items():
        for start in range(0, len(uids), 500):  # bounded IN lists
            session.exec(
                update(Email)
                .where(
                    col(Email.folder_id) == folder_id,
                    col(Email.uidvalidity) == uidvalidity,
                    col(Email.uid).in_(uids[start : start + 500]),
                )
                .values(updated_at=now, **seq, **flag_columns(flags))
            )
    return len(flags_by_uid)


def flag_columns(flags: str) -> dict[str, Any]:
    """The flag string and the booleans derived from it."""
    names = {flag.lower() for flag in flags.split()}
    return {
        "flags": flags,
        "seen": "\\seen" in names,
        "flagged": "\\flagged" in names,
        "answered": "\\answered" in names,
    }


def known_message_ids(session: Session, *, server_id: int, message_ids: Iterable[str]) -> set[str]:
    """Which of these Message-IDs are already mirrored for the server."""
    ids = sorted({mid for mid in message_ids if mid})
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(
            session.exec(
                select(Email.message_id).where(
                    Email.imap_server_id == server_id, col(Email.message_id).in_(chunk)
                )
            )
        )
    return found


def insert_emails(
    session: Session, *, rows: list[dict[str, Any]], attachments: list[list[dict[str, Any]]]
) -> list[int]:
    """Insert one folder's emails (and attachments' metadata) in bulk; returns the new ids in order."""
    if not rows:
        return []
    rows = crud_changes.stamped(rows, crud_changes.stamp_new(session, rows[0]["owner_id"]))
    # Unordered RETURNING lets SQLite insert many rows per statement; UIDs map ids back to rows.
    table = Email.__table__  # type: ignore[attr-defined]
    id_by_uid = dict(insert_returning(session, table, rows, (table.c.uid, table.c.id)))
    ids = [id_by_uid[row["uid"]] for row in rows]
    attachment_rows = [
        {**attachment, "email_id": email_id}
        for email_id, items in zip(ids, attachments, strict=True)
        for attachment in items
    ]
    if attachment_rows:
        session.execute(insert(Attachment), attachment_rows)
    return ids


# --- messages that left a folder, kept until the run knows whether they moved (sync/moves.py) -----

# What a vanished message is matched on, and what its events name.
_VANISHED_COLUMNS = (
    col(Email.id),
    col(Email.folder),
    col(Email.message_id),
    col(Email.size),
    col(Email.internal_date),
    col(Email.subject),
    col(Email.sender),
    col(Email.thread_id),
    col(Email.object_id),
)
_vanished = sa_select(*_VANISHED_COLUMNS)


def vanished_in_ranges(
    session: Session, *, folder_id: int, uidvalidity: int, ranges: Sequence[tuple[int, int]]
) -> list[tuple[Any, ...]]:
    """The mirrored messages whose UIDs fall in ``ranges``, as ``_VANISHED_COLUMNS`` (nothing deleted)."""
    found: list[tuple[Any, ...]] = []
    # Ranges are never expanded into UID lists (one may cover four billion UIDs), and fewer ranges than
    # IN values go in one statement: SQLite parses ORs as a tree of bounded depth.
    for start in range(0, len(ranges), 100):
        chunk = ranges[start : start + 100]
        in_ranges = or_(*(col(Email.uid).between(low, high) for low, high in chunk))
        condition = (col(Email.folder_id) == folder_id) & (col(Email.uidvalidity) == uidvalidity) & in_ranges
        found += [tuple(row) for row in session.execute(_vanished.where(condition)).all()]
    return found


def vanished_uids(
    session: Session, *, folder_id: int, uidvalidity: int, uids: Sequence[int]
) -> list[tuple[Any, ...]]:
    """The mirrored messages of a folder with these UIDs, as ``_VANISHED_COLUMNS`` (nothing deleted)."""
    found: list[tuple[Any, ...]] = []
    for chunk in _chunks(sorted(uids)):
        condition = (
            (col(Email.folder_id) == folder_id)
            & (col(Email.uidvalidity) == uidvalidity)
            & col(Email.uid).in_(chunk)
        )
        found += [tuple(row) for row in session.execute(_vanished.where(condition)).all()]
    return found


def delete_emails(session: Session, *, email_ids: Sequence[int]) -> None:
    """Remove emails by id (their attachments go with them)."""
    for chunk in _chunks(sorted(email_ids)):
        crud_changes.record_deletions(session, col(Email.id).in_(chunk))
        session.exec(delete(Email).where(col(Email.id).in_(chunk)))


_COPY_COLUMNS = (
    col(Email.id),
    col(Email.owner_id),
    col(Email.folder_id),
    col(Email.folder),
    col(Email.uidvalidity),
    col(Email.uid),
    col(Email.modseq),
    col(Email.flags),
    col(Email.seen),
    col(Email.flagged),
    col(Email.answered),
    col(Email.message_id),
    col(Email.size),
    col(Email.internal_date),
    col(Email.subject),
    col(Email.sender),
    col(Email.object_id),
)


def recent_copies(
    session: Session, *, server_id: int, message_ids: Sequence[str], since: datetime
) -> list[dict[str, Any]]:
    """Emails of a server with one of these Message-IDs mirrored since ``since``, as dicts of their place,
    flags and fingerprint (the columns ``move_email`` takes, and those of ``moves.fingerprint``)."""
    found: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(message_ids))):
        statement = sa_select(*_COPY_COLUMNS).where(
            col(Email.imap_server_id) == server_id,
            col(Email.message_id).in_(chunk),
            col(Email.created_at) >= since,
        )
        found += [dict(row._mapping) for row in session.execute(statement).all()]
    return found


def move_email(session: Session, *, email_id: int, row: dict[str, Any]) -> None:
    """Give a mirrored email the place (folder, UIDVALIDITY, UID) and flags of ``row``, keeping its id.

    Everything else stays: thread, attachments, body, search index entry.
    """
    session.exec(
        update(Email)
        .where(col(Email.id) == email_id)
        .values(
            folder_id=row["folder_id"],
            folder=row["folder"],
            uidvalidity=row["uidvalidity"],
            uid=row["uid"],
            modseq=row["modseq"],
            flags=row["flags"],
            seen=row["seen"],
            flagged=row["flagged"],
            answered=row["answered"],
            updated_at=utcnow(),
            **crud_changes.stamp(session, row["owner_id"]),
        )
    )


def emails_by_uid(
    session: Session, *, folder_id: int, uidvalidity: int, uids: Iterable[int]
) -> dict[int, tuple[int, str]]:
    """UID → (email id, folder name) of mirrored messages of one folder generation."""
    statement = select(Email.uid, Email.id, Email.folder).where(
        Email.folder_id == folder_id, Email.uidvalidity == uidvalidity
    )
    found: dict[int, tuple[int, str]] = {}
    for chunk in _chunks(sorted(set(uids))):
        for uid, email_id, folder in session.exec(statement.where(col(Email.uid).in_(chunk))).all():
            found[uid] = (email_id or 0, folder)
    return found


def count_by_folder(session: Session, *, folder_ids: Sequence[int]) -> dict[int, int]:
    """How many emails each of these folders holds (folders without any are left out)."""
    counts: dict[int, int] = {}
    for chunk in _chunks(list(folder_ids)):
        statement = (
            select(Email.folder_id, func.count())
            .where(col(Email.folder_id).in_(chunk))
            .group_by(col(Email.folder_id))
        )
        counts.update({folder_id: int(count) for folder_id, count in session.exec(statement).all()})
    return counts


def server_totals(session: Session, *, server_id: int) -> tuple[list[str], int]:
    """The names of a server's mirrored folders and how many emails it holds."""
    names = sorted(session.exec(select(Folder.name).where(Folder.imap_server_id == server_id)).all())
    total = session.exec(
        select(func.count()).select_from(Email).where(Email.imap_server_id == server_id)
    ).one()
    return names, int(total)
