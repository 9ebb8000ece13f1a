"""DataLoaders, built per request: each relation of a page of emails costs one query, not one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session
from strawberry.dataloader import DataLoader

from imap2api.crud import emails as crud_emails
from imap2api.db import run_db
from imap2api.graphql.budget import current_budget
from imap2api.models import Attachment

K = TypeVar("K")
V = TypeVar("V")
ThreadKey = tuple[str, int]  # (thread id, how many members)
Bodies = tuple[str, str]  # (text, HTML)


def _loader(
    owner_id: int,
    fetch: Callable[..., dict[K, V]],
    default: Callable[[], V],
) -> DataLoader[K, V]:
    """A DataLoader calling ``fetch(session, owner_id=..., keys=...)`` once per batch of keys."""

    async def load(keys: list[K]) -> list[V]:
        found = await run_db(fetch, owner_id=owner_id, keys=list(keys))
        return [found[key] if key in found else default() for key in keys]

    return DataLoader(load_fn=load)


def _thread_counts(session: Session, *, owner_id: int, keys: list[str]) -> dict[str, int]:
    return crud_emails.thread_counts(session, owner_id=owner_id, thread_ids=keys)


def _thread_emails(session: Session, *, owner_id: int, keys: list[ThreadKey]) -> dict[ThreadKey, list[Any]]:
    """The first that many members of each thread (one query per distinct count)."""
    by_limit: dict[int, list[str]] = defaultdict(list)
    for thread_id, limit in keys:
        by_limit[limit].append(thread_id)
    found: dict[ThreadKey, list[Any]] = {}
    for limit, thread_ids in by_limit.items():
        members = crud_emails.emails_by_thread(session, owner_id=owner_id, thread_ids=thread_ids, limit=limit)
        found.update({(thread_id, limit): rows for thread_id, rows in members.items()})
    return found


def _bodies_within(
    session: Session, *, owner_id: int, keys: list[int], max_chars: int
) -> dict[int, Bodies] | None:
    """The bodies, or None when together they hold more than ``max_chars`` (then none is read)."""
    if max_chars > 0 and crud_emails.body_chars(session, owner_id=owner_id, email_ids=keys) > max_chars:
        return None
    return crud_emails.bodies(session, owner_id=owner_id, email_ids=keys)


def _bodies_loader(owner_id: int) -> DataLoader[int, Bodies]:
    """Bodies of a batch of emails, fetched only when they fit the operation's body budget."""

    async def load(keys: list[int]) -> list[Bodies]:
        budget = current_budget()
        limit = budget.remaining if budget.limit > 0 else 0
        found = await run_db(_bodies_within, owner_id=owner_id, keys=list(keys), max_chars=limit)
        if found is None:
            raise budget.error()
        return [found.get(key, ("", "")) for key in keys]

    return DataLoader(load_fn=load)


def _attachments(session: Session, *, owner_id: int, keys: list[int]) -> dict[int, list[Attachment]]:
    # Keys are ids of emails the caller already read under its ownership.
    return crud_emails.attachments_of(session, email_ids=keys)


@dataclass(frozen=True)
class Loaders:
    """The loaders of one request, for one user."""

    thread_count: DataLoader[str, int]
    thread_emails: DataLoader[ThreadKey, list[Any]]
    bodies: DataLoader[int, Bodies]
    attachments: DataLoader[int, list[Attachment]]


def build_loaders(owner_id: int) -> Loaders:
    """Fresh loaders for a request by ``owner_id``."""
    return Loaders(
        thread_count=_loader(owner_id, _thread_counts, int),
        thread_emails=_loader(owner_id, _thread_emails, list),
        bodies=_bodies_loader(owner_id),
        attachments=_loader(owner_id, _attachments, list),
    )
