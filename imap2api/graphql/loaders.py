"""DataLoaders, built per request: each relation of a page of emails costs one query, not one per row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.dataloader import DataLoader

from imap2api.crud import emails as crud_emails
from imap2api.db import run_db


def _loader(owner_id: int, fetch: Any, default: Any) -> DataLoader:
    """A DataLoader calling ``fetch(session, owner_id=..., keys)`` once per batch of keys."""

    async def load(keys: list[Any]) -> list[Any]:
        found = await run_db(fetch, owner_id=owner_id, keys=list(keys))
        return [found.get(key, default() if callable(default) else default) for key in keys]

    return DataLoader(load_fn=load)


def _thread_counts(session: Any, *, owner_id: int, keys: list[str]) -> dict[str, int]:
    return crud_emails.thread_counts(session, owner_id=owner_id, thread_ids=keys)


def _thread_emails(session: Any, *, owner_id: int, keys: list[str]) -> dict[str, list[Any]]:
    return crud_emails.emails_by_thread(session, owner_id=owner_id, thread_ids=keys)


def _bodies(session: Any, *, owner_id: int, keys: list[int]) -> dict[int, tuple[str, str]]:
    return crud_emails.bodies(session, owner_id=owner_id, email_ids=keys)


def _attachments(session: Any, *, owner_id: int, keys: list[int]) -> dict[int, list[Any]]:
    # Keys are ids of emails the caller already read under its ownership.
    return crud_emails.attachments_of(session, email_ids=keys)


@dataclass
class Loaders:
    """The loaders of one request, for one user."""

    thread_count: DataLoader
    thread_emails: DataLoader
    bodies: DataLoader
    attachments: DataLoader


def build_loaders(owner_id: int) -> Loaders:
    """Fresh loaders for a request by ``owner_id``."""
    return Loaders(
        thread_count=_loader(owner_id, _thread_counts, 0),
        thread_emails=_loader(owner_id, _thread_emails, list),
        bodies=_loader(owner_id, _bodies, ("", "")),
        attachments=_loader(owner_id, _attachments, list),
    )
