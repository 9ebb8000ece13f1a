"""Thread assignment across all folders of a server, from Message-ID / In-Reply-To / References."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from imap2api.models import Email, ThreadKey

_CHUNK = 500


def new_thread_id() -> str:
    """A fresh opaque thread id."""
    return "thr_" + secrets.token_hex(8)


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
    """Give each message a thread id: messages sharing any linked Message-ID share one thread.

    ``keys_per_message`` holds, for each message, its own Message-ID followed by the ids it
    refers to. A reply whose parent is missing still joins siblings through the shared parent
    id. When one message links two existing threads, they are merged into the older-named one.
    Subjects are never used: unrelated mail with the same subject stays apart.
    """
    all_keys = sorted({key for keys in keys_per_message for key in keys})
    known = _known(session, server_id, all_keys)
    existing = set(known.values())

    # Union-find over thread ids (existing ones and placeholders for new groups).
    parent: dict[str, str] = {}

    def find(item: str) -> str:
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        # Prefer keeping an existing id; between two, the smaller one, so the choice is stable.
        keep, drop = sorted((ra, rb), key=lambda t: (t not in existing, t))
        parent[drop] = keep

    key_owner: dict[str, str] = dict(known)
    groups: list[str] = []
    for keys in keys_per_message:
        group = new_thread_id()
        parent[group] = group
        for key in keys:
            other = key_owner.get(key)
            if other is None:
                key_owner[key] = group
            else:
                union(group, other)
        groups.append(group)

    thread_ids = [find(group) for group in groups]
    merged = {old: find(old) for old in existing if find(old) != old}
    for old, new in merged.items():
        session.exec(
            update(Email)
            .where(col(Email.imap_server_id) == server_id, col(Email.thread_id) == old)
            .values(thread_id=new)  # type: ignore[call-overload]
        )
        session.exec(
            update(ThreadKey)
            .where(col(ThreadKey.imap_server_id) == server_id, col(ThreadKey.thread_id) == old)
            .values(thread_id=new)  # type: ignore[call-overload]
        )
    fresh = [
        {"imap_server_id": server_id, "message_id": key, "thread_id": find(owner)}
        for key, owner in key_owner.items()
        if key not in known
    ]
    if fresh:
        session.exec(insert(ThreadKey), params=fresh)  # type: ignore[call-overload]
    return ThreadAssignment(thread_ids=thread_ids, existing=existing - set(merged), merged=merged)


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
