"""A folder's changes since its last sync, mirrored: expunges and flag changes applied, new UIDs listed.

Two ways, by what the server offers. With QRESYNC the server reports expunges (VANISHED) and flag
changes (FETCH) itself, and only UIDs above the previous UIDNEXT are searched: nothing is listed
for the whole folder. Otherwise the folder's UIDs are listed (UID SEARCH) and compared with the
mirror; flags come from CHANGEDSINCE with CONDSTORE, or from a FLAGS sweep without it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from imapclient import IMAPClient

from imap2api.crud import mirror as crud_mirror
from imap2api.db import session_scope
from imap2api.sync.examine import Changes, FolderStatus
from imap2api.sync.imap import flags_text, uid_fetch, uid_search, uid_set
from imap2api.sync.lease import keep_lease
from imap2api.sync.progress import RunState

log = logging.getLogger("imap2api.sync")

DAYS_PER_UNIT = {"days": 1, "weeks": 7, "months": 30}


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


def apply_reported_changes(
    client: IMAPClient, state: RunState, folder_id: int, status: FolderStatus, changes: Changes, boundary: int
) -> list[int] | None:
    """Mirror what QRESYNC reported and return the new UIDs (from ``boundary``, the previous UIDNEXT).

    Returns None when the mirror and EXISTS disagree afterwards (a limit changed, a sync broke off
    early...): the caller then lists the folder, and only this once.
    """
    uidvalidity = status.uidvalidity
    with session_scope() as session:
        keep_lease(session, server_id=state.server_id, holder=state.holder)
        deleted, removed = crud_mirror.delete_uid_ranges(
            session, folder_id=folder_id, uidvalidity=uidvalidity, ranges=changes.vanished
        )
        # Mail from the boundary up that is mirrored already: stored by a sync that broke off.
        already = crud_mirror.stored_uids_from(
            session, folder_id=folder_id, uidvalidity=uidvalidity, first_uid=boundary
        )
        candidates = [uid for uid in changes.flags if uid < boundary or uid in already]
        stored = crud_mirror.stored_flags(
            session, folder_id=folder_id, uidvalidity=uidvalidity, uids=candidates
        )
        flag_changes = {
            uid: changes.flags[uid]
            for uid in candidates
            if uid in stored and stored[uid] != changes.flags[uid]
        }
        if flag_changes:
            crud_mirror.set_flags(
                session, folder_id=folder_id, uidvalidity=uidvalidity, flags_by_uid=flag_changes
            )
        mirrored = crud_mirror.count_emails(session, folder_id=folder_id, uidvalidity=uidvalidity)
    state.removed_message_ids.update(removed)
    state.deleted += deleted
    state.updated += len(flag_changes)
    new_uids: list[int] = []
    uidnext = status.uidnext or boundary
    if uidnext > boundary:
        # Only the UIDs that arrived: bounded by UIDNEXT as EXAMINE gave it, which the next sync starts from.
        found = uid_search(client, ["UID", f"{boundary}:{uidnext - 1}"])
        new_uids = sorted({uid for uid in found if boundary <= uid < uidnext} - already)
    if mirrored + len(new_uids) != status.exists:
        log.info(
            "folder %d: %d mirrored + %d new != %d on the server; listing it",
            folder_id,
            mirrored,
            len(new_uids),
            status.exists,
        )
        return None
    return new_uids


def apply_listed_changes(
    client: IMAPClient,
    state: RunState,
    folder_id: int,
    status: FolderStatus,
    changes: Changes | None,
    previous_modseq: int | None,
) -> tuple[list[int], int]:
    """List the folder's UIDs, mirror expunges and flag changes; returns (new UIDs, highest UID seen + 1)."""
    uidvalidity = status.uidvalidity
    with session_scope() as session:
        stored = crud_mirror.stored_flags(session, folder_id=folder_id, uidvalidity=uidvalidity)
    wanted = wanted_uids(
        client, limit_type=state.limit_type, limit_value=state.limit_value, exists=status.exists
    )
    gone = sorted(set(stored) - wanted)
    kept = set(stored) & wanted
    flag_changes = _flag_changes(client, status, stored, kept, previous_modseq, changes)
    if gone or flag_changes:
        with session_scope() as session:
            keep_lease(session, server_id=state.server_id, holder=state.holder)
            if gone:
                state.removed_message_ids.update(
                    crud_mirror.delete_uids(session, folder_id=folder_id, uidvalidity=uidvalidity, uids=gone)
                )
            if flag_changes:
                crud_mirror.set_flags(
                    session, folder_id=folder_id, uidvalidity=uidvalidity, flags_by_uid=flag_changes
                )
        state.deleted += len(gone)
        state.updated += len(flag_changes)
    seen_below = max(wanted | set(stored), default=0) + 1
    return sorted(wanted - set(stored)), seen_below


def _flag_changes(
    client: IMAPClient,
    status: FolderStatus,
    stored: dict[int, str],
    kept: set[int],
    previous_modseq: int | None,
    changes: Changes | None,
) -> dict[int, str]:
    """New flags of kept messages: as QRESYNC reported them, by CHANGEDSINCE, or from a FLAGS sweep."""
    if not kept:
        return {}
    if changes is not None:
        current = changes.flags
    elif status.highestmodseq is not None and previous_modseq is not None:
        if status.highestmodseq == previous_modseq:
            return {}
        response = uid_fetch(client, "1:*", ["FLAGS"], [f"CHANGEDSINCE {previous_modseq}"])
        current = {uid: flags_text(data[b"FLAGS"]) for uid, data in response.items() if b"FLAGS" in data}
    else:
        response = uid_fetch(client, uid_set(kept), ["FLAGS"])
        current = {uid: flags_text(data[b"FLAGS"]) for uid, data in response.items() if b"FLAGS" in data}
    return {uid: flags for uid, flags in current.items() if uid in kept and flags != stored.get(uid)}
