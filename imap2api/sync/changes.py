"""A folder's changes since its last sync, mirrored: expunges and flag changes applied, new UIDs listed.

Two ways, by what the server offers. With QRESYNC the server reports expunges (VANISHED) and flag
changes (FETCH) itself, and only UIDs above the previous UIDNEXT are searched: nothing is listed
for the whole folder. Otherwise the folder's UIDs are listed (UID SEARCH) and compared with the
mirror; flags come from CHANGEDSINCE with CONDSTORE, or from a FLAGS sweep without it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from sqlmodel import Session

from imap2api.crud import mirror as crud_mirror
from imap2api.db import session_scope
from imap2api.enums import EventType
from imap2api.sync import plan as decide
from imap2api.sync.examine import Changes, FolderStatus
from imap2api.sync.imap import flags_text, uid_fetch, uid_search, uid_set
from imap2api.sync.lease import keep_lease
from imap2api.sync.plan import FlagSource
from imap2api.sync.progress import RunState

log = logging.getLogger("imap2api.sync")


def wanted_uids(client: IMAPClient, *, limit_type: str, limit_value: int | None, exists: int) -> set[int]:
    """The UIDs the mirror should hold for this folder under the server's sync limit."""
    if exists == 0:
        return set()
    since = decide.since(limit_type, limit_value, datetime.now(UTC))
    if since is not None:
        return set(uid_search(client, ["SINCE", since.date()]))
    return decide.within_limit(uid_search(client, "ALL"), limit_type, limit_value)


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
        # Held, not deleted: another folder may have taken them (sync/moves.py).
        removed = state.moves.hold(
            folder_id,
            crud_mirror.vanished_in_ranges(
                session, folder_id=folder_id, uidvalidity=uidvalidity, ranges=changes.vanished
            ),
        )
        # Mail from the boundary up that is mirrored already: stored by a sync that broke off.
        already = crud_mirror.stored_uids_from(
            session, folder_id=folder_id, uidvalidity=uidvalidity, first_uid=boundary
        )
        candidates = decide.reported_candidates(changes.flags, boundary, already)
        stored = crud_mirror.stored_flags(
            session, folder_id=folder_id, uidvalidity=uidvalidity, uids=candidates
        )
        flag_changes = decide.flag_diff(changes.flags, stored, set(candidates))
        if flag_changes:
            crud_mirror.set_flags(
                session, folder_id=folder_id, uidvalidity=uidvalidity, flags_by_uid=flag_changes
            )
            record_flag_changes(session, state, folder_id, uidvalidity, flag_changes)
        mirrored = crud_mirror.count_emails(session, folder_id=folder_id, uidvalidity=uidvalidity)
        mirrored -= state.moves.held_in(folder_id)
    state.removed_message_ids.update(removed)
    state.updated += len(flag_changes)
    new_uids: list[int] = []
    window = decide.arrival_range(status.uidnext, boundary)
    if window is not None:
        # Only the UIDs that arrived: bounded by UIDNEXT as EXAMINE gave it, which the next sync starts from.
        first, last = window
        found = uid_search(client, ["UID", f"{first}:{last}"])
        new_uids = decide.arrivals(found, first, last, already)
    if not decide.consistent(mirrored, len(new_uids), status.exists):
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
    diff = decide.listed_diff(stored, wanted)
    gone = diff.gone
    flag_changes = _flag_changes(client, status, stored, diff.kept, previous_modseq, changes)
    if gone or flag_changes:
        with session_scope() as session:
            keep_lease(session, server_id=state.server_id, holder=state.holder)
            if gone:
                # Held, not deleted: another folder may have taken them (sync/moves.py).
                vanished = crud_mirror.vanished_uids(
                    session, folder_id=folder_id, uidvalidity=uidvalidity, uids=gone
                )
                state.removed_message_ids.update(state.moves.hold(folder_id, vanished))
            if flag_changes:
                crud_mirror.set_flags(
                    session, folder_id=folder_id, uidvalidity=uidvalidity, flags_by_uid=flag_changes
                )
                record_flag_changes(session, state, folder_id, uidvalidity, flag_changes)
        state.updated += len(flag_changes)
    return diff.new, diff.seen_below


def record_flag_changes(
    session: Session, state: RunState, folder_id: int, uidvalidity: int, flag_changes: dict[int, str]
) -> None:
    """An ``email.updated`` event per message whose flags changed (in the caller's transaction)."""
    emails = crud_mirror.emails_by_uid(
        session, folder_id=folder_id, uidvalidity=uidvalidity, uids=flag_changes
    )
    for uid, flags in sorted(flag_changes.items()):
        if uid not in emails:
            continue
        email_id, folder = emails[uid]
        columns = crud_mirror.flag_columns(flags)
        state.record_event(
            session,
            EventType.EMAIL_UPDATED,
            {
                "id": email_id,
                "folder": folder,
                "flags": columns["flags"],
                "seen": columns["seen"],
                "flagged": columns["flagged"],
                "answered": columns["answered"],
                "imap_server": state.server_id,
            },
        )


def _flag_changes(
    client: IMAPClient,
    status: FolderStatus,
    stored: dict[int, str],
    kept: set[int],
    previous_modseq: int | None,
    changes: Changes | None,
) -> dict[int, str]:
    """New flags of kept messages: as QRESYNC reported them, by CHANGEDSINCE, or from a FLAGS sweep."""
    source = decide.flag_source(
        kept=bool(kept),
        reported=changes is not None,
        highestmodseq=status.highestmodseq,
        previous_modseq=previous_modseq,
    )
    if source is FlagSource.NOTHING:
        return {}
    if source is FlagSource.REPORTED and changes is not None:
        current = changes.flags
    else:
        if source is FlagSource.CHANGED_SINCE:
            response = uid_fetch(client, "1:*", ["FLAGS"], [f"CHANGEDSINCE {previous_modseq}"])
            current = _flags_of(response)
        else:
            # In chunks, as sizes are fetched: a huge folder never means one huge response.
            current = {}
            for chunk in decide.chunks(sorted(kept)):
                current.update(_flags_of(uid_fetch(client, uid_set(chunk), ["FLAGS"])))
    return decide.flag_diff(current, stored, kept)


def _flags_of(response: dict[int, dict[bytes, Any]]) -> dict[int, str]:
    """Each UID's flags as stored, from a FETCH FLAGS answer (entries without FLAGS skipped)."""
    return {uid: flags_text(data[b"FLAGS"]) for uid, data in response.items() if b"FLAGS" in data}
