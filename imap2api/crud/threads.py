"""Thread assignment across all folders of a server, from Message-ID / In-Reply-To / References."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from imap2api.crud import changes as crud_changes
from imap2api.mail.threading import group_threads
from imap2api.models import Email, ThreadKey

_CHUNK = 500


@dataclass
class ThreadAssignment:
    """The outcome of threading a batch: an id per message, and the merges it caused."""

    thread_ids: list[str]
    existing: set[str] = field(default_factory=set)  # thread ids that existed before this batch
    merged: dict[str, str] = field(default_factory=dict)  # absorbed thread id -> surviving one


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    """Slices small enough for an IN (...) list on every database."""
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _known(session: Session, server_id: int, keys: list[str]) -> dict[str, str]:
    """Thread ids already recorded for these Message-IDs."""
    found: dict[str, str] = {}
    for chunk in _chunks(keys):
        rows = session.exec(
            select(ThreadKey.message_id, ThreadKey.thread_id).where(
                ThreadKey.imap_server_id == server_id, col(ThreadKey.message_id).in_(chunk)
            )
        )
        found.update(dict(rows.all()))
    return found


def assign_threads(
    session: Session, *, server_id: int, keys_per_message: list[list[str]]
) -> ThreadAssignment:
    """Thread a batch (``imap2api.mail.threading.group_threads``) against the server's known
    Message-IDs, and store the merges and the new ids."""
    all_keys = sorted({key for keys in keys_per_message for key in keys})
    known = _known(session, server_id, all_keys)
    grouping = group_threads(keys_per_message, known)
    # A merge changes emails' thread: the change feed lists them as updated.
    owner_id = crud_changes.owner_of_server(session, server_id) if grouping.merged else None
    seq = crud_changes.stamp(session, owner_id) if owner_id is not None else {}
    for old, new in grouping.merged.items():
        session.exec(
            update(Email)
            .where(col(Email.imap_server_id) == server_id, col(Email.thread_id) == old)
            .values(thread_id=new, **seq)
        )
        session.exec(
            update(ThreadKey)
            .where(col(ThreadKey.imap_server_id) == server_id, col(ThreadKey.thread_id) == old)
            .values(thread_id=new)
        )
    fresh = [
        {"imap_server_id": server_id, "message_id": key, "thread_id": thread_id}
        for key, thread_id in grouping.new_keys.items()
    ]
    if fresh:
        session.exec(insert(ThreadKey), params=fresh)
    existing = set(known.values()) - set(grouping.merged)
    return ThreadAssignment(thread_ids=grouping.thread_ids, existing=existing, merged=grouping.merged)


def thread_counts(session: Session, *, server_id: int, thread_ids: Iterable[str]) -> dict[str, int]:
    """How many mirrored emails each thread has."""
    ids = sorted(set(thread_ids))
    counts: dict[str, int] = {}
    for chunk in _chunks(ids):
        rows = session.exec(
            select(Email.thread_id, func.count())
            .where(Email.imap_server_id == server_id, col(Email.thread_id).in_(chunk))
            .group_by(Email.thread_id)
        )
        counts.update({thread_id: count for thread_id, count in rows})
    return counts
