"""Mirroring one folder: what changed since the last sync, fetched in bounded batches."""

from __future__ import annotations

import imaplib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from imapclient import IMAPClient

from imap2api.config import settings
from imap2api.crud import mirror as crud_mirror
from imap2api.db import session_scope
from imap2api.sync.batch import prepare_batch, store_batch
from imap2api.sync.folders import RemoteFolder
from imap2api.sync.imap import flags_text, uid_fetch, uid_search, uid_set
from imap2api.sync.pipeline import pipelined
from imap2api.sync.progress import RunState

log = logging.getLogger("imap2api.sync")

DAYS_PER_UNIT = {"days": 1, "weeks": 7, "months": 30}


@dataclass(frozen=True)
class FolderStatus:
    """What SELECT told us about a folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None


class FolderVanished(Exception):
    """Raised when a listed folder can no longer be selected (deleted meanwhile)."""


def select(client: IMAPClient, name: str) -> FolderStatus:
    """SELECT a folder read-only (EXAMINE), so nothing on the server changes."""
    try:
        info = client.select_folder(name, readonly=True)
    except imaplib.IMAP4.error as exc:
        raise FolderVanished(name) from exc
    return FolderStatus(
        uidvalidity=int(info[b"UIDVALIDITY"]),
        uidnext=info.get(b"UIDNEXT"),
        exists=int(info.get(b"EXISTS", 0)),
        highestmodseq=info.get(b"HIGHESTMODSEQ"),
    )


def wanted_uids(client: IMAPClient, *, limit_type: str, limit_value: int | None, exists: int) -> set[int]:
    """The UIDs the mirror should hold for this folder under the server's sync limit."""
    if exists == 0:
        return set()
    if limit_type in DAYS_PER_UNIT and limit_value:
        since = datetime.now(UTC) - timedelta(days=limit_value * DAYS_PER_UNIT[limit_type])
        return set(uid_search(client, ["SINCE", since.date()]))
    uids = uid_search(client, "ALL")
    if limit_type == "last_n" and limit_value:
        uids = sorted(uids)[-limit_value:]
    return set(uids)


def _unchanged(folder: Any, status: FolderStatus, limit_type: str) -> bool:
    """Whether SELECT alone proves nothing changed since the last completed sync.

    New mail moves UIDNEXT, expunges lower EXISTS, flag changes move HIGHESTMODSEQ. Without
    CONDSTORE flags could have changed unseen, and time-based limits move with the clock.
    """
    return (
        folder.uidvalidity == status.uidvalidity
        and folder.uidnext == status.uidnext
        and folder.message_count == status.exists
        and status.highestmodseq is not None
        and folder.highestmodseq == status.highestmodseq
        and limit_type in ("all", "last_n")
    )


def sync_folder(client: IMAPClient, state: RunState, remote: RemoteFolder) -> None:
    """Bring one folder's mirror up to date."""
    status = select(client, remote.name)
    with session_scope() as session:
        folder = crud_mirror.ensure_folder(
            session,
            server_id=state.server_id,
            name=remote.name,
            delimiter=remote.delimiter,
            special_use=remote.special_use,
        )
        if _unchanged(folder, status, state.limit_type):
            return
        same_generation = folder.uidvalidity == status.uidvalidity
        # Mail only counts as "arrived" when this folder generation was fully synced before.
        previous_uidnext = folder.uidnext if same_generation else None
        previous_modseq = folder.highestmodseq if same_generation else None
        # A recreated folder (new UIDVALIDITY) is replaced, never merged with its old mirror.
        state.removed_message_ids.update(
            crud_mirror.delete_stale_generations(session, folder_id=folder.id, uidvalidity=status.uidvalidity)
        )
        stored = crud_mirror.stored_flags(session, folder_id=folder.id, uidvalidity=status.uidvalidity)
    folder_id = folder.id or 0

    wanted = wanted_uids(
        client, limit_type=state.limit_type, limit_value=state.limit_value, exists=status.exists
    )
    gone = sorted(set(stored) - wanted)
    if gone:
        with session_scope() as session:
            state.removed_message_ids.update(
                crud_mirror.delete_uids(session, folder_id=folder_id, uidvalidity=status.uidvalidity, uids=gone)
            )
        state.deleted += len(gone)

    kept = set(stored) & wanted
    _sync_flags(client, state, folder_id, status, stored, kept, previous_modseq)

    new_uids = sorted(wanted - set(stored))
    state.add_total(len(new_uids))
    prepared = (
        prepare_batch(client, state, folder_id=folder_id, folder_name=remote.name,
                      uidvalidity=status.uidvalidity, batch=batch)
        for batch in _batches(client, new_uids)
    )
    # The IMAP client is used only by the producer thread while the pipeline runs.
    pipelined(prepared, lambda batch: store_batch(state, batch, previous_uidnext=previous_uidnext))

    with session_scope() as session:
        crud_mirror.save_folder_state(
            session,
            folder_id=folder_id,
            uidvalidity=status.uidvalidity,
            uidnext=status.uidnext,
            highestmodseq=status.highestmodseq,
            message_count=status.exists,
        )


def _sync_flags(
    client: IMAPClient,
    state: RunState,
    folder_id: int,
    status: FolderStatus,
    stored: dict[int, str],
    kept: set[int],
    previous_modseq: int | None,
) -> None:
    """Pick up flag changes: CHANGEDSINCE where the server has CONDSTORE, a FLAGS sweep otherwise."""
    if not kept:
        return
    if status.highestmodseq is not None and previous_modseq is not None:
        if status.highestmodseq == previous_modseq:
            return
        response = uid_fetch(client, "1:*", ["FLAGS"], [f"CHANGEDSINCE {previous_modseq}"])
    else:
        response = uid_fetch(client, uid_set(kept), ["FLAGS"])
    changes = {}
    for uid, data in response.items():
        if uid not in kept or b"FLAGS" not in data:
            continue
        flags = flags_text(data[b"FLAGS"])
        if flags != stored.get(uid):
            changes[uid] = flags
    if changes:
        with session_scope() as session:
            crud_mirror.set_flags(
                session, folder_id=folder_id, uidvalidity=status.uidvalidity, flags_by_uid=changes
            )
        state.updated += len(changes)


def _batches(client: IMAPClient, uids: list[int]) -> Iterator[list[tuple[int, int]]]:
    """(uid, size) batches bounded by message count and by bytes, so memory stays flat."""
    max_count, max_bytes = settings.sync_batch_messages, settings.sync_batch_bytes
    # Sizes are asked for in chunks too, so a huge folder never means one huge response.
    for start in range(0, len(uids), 5000):
        chunk = uids[start : start + 5000]
        sizes = uid_fetch(client, uid_set(chunk), ["RFC822.SIZE"])
        batch: list[tuple[int, int]] = []
        batch_bytes = 0
        for uid in chunk:
            if uid not in sizes:
                continue  # expunged since SEARCH
            size = int(sizes[uid].get(b"RFC822.SIZE", 0))
            if batch and (len(batch) >= max_count or batch_bytes + size > max_bytes):
                yield batch
                batch, batch_bytes = [], 0
            batch.append((uid, size))
            batch_bytes += min(size, settings.sync_max_message_bytes)
        if batch:
            yield batch
