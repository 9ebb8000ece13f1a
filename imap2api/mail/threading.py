"""Threading without a database: which messages share a conversation, from their Message-ID links.

Pure (no I/O): ``crud.threads`` reads the known ids, calls ``group_threads`` and writes the outcome.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field


def new_thread_id() -> str:
    """A fresh opaque thread id."""
    return "thr_" + secrets.token_hex(8)


@dataclass
class Grouping:
    """A thread id per message, the merges of known threads, and the thread of every new key."""

    thread_ids: list[str]
    merged: dict[str, str] = field(default_factory=dict)  # absorbed known thread id -> surviving one
    new_keys: dict[str, str] = field(default_factory=dict)  # Message-ID not known before -> its thread


def group_threads(
    keys_per_message: list[list[str]],
    known: dict[str, str],
    *,
    new_id: Callable[[], str] = new_thread_id,
) -> Grouping:
    """Give each message a thread id: messages sharing any linked Message-ID share one thread.

    ``keys_per_message`` holds, for each message, its own Message-ID followed by the ids it refers
    to; ``known`` maps Message-IDs already threaded to their thread. A reply whose parent is missing
    still joins siblings through the shared parent id. When one message links two known threads they
    merge into one, kept by the rule: a known id over a new one, then the smaller, so the choice is
    stable. Subjects are never used: unrelated mail with the same subject stays apart.
    """
    existing = set(known.values())
    parent: dict[str, str] = {}  # union-find over thread ids, known ones and one per message

    def find(item: str) -> str:
        while parent.setdefault(item, item) != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            keep, drop = sorted((ra, rb), key=lambda t: (t not in existing, t))
            parent[drop] = keep

    key_owner: dict[str, str] = dict(known)
    groups: list[str] = []
    for keys in keys_per_message:
        group = new_id()
        parent[group] = group
        for key in keys:
            other = key_owner.get(key)
            if other is None:
                key_owner[key] = group
            else:
                union(group, other)
        groups.append(group)
    return Grouping(
        thread_ids=[find(group) for group in groups],
        merged={old: find(old) for old in existing if find(old) != old},
        new_keys={key: find(owner) for key, owner in key_owner.items() if key not in known},
    )
