"""Mirroring a run's folders: every folder's changes first (so the run's total is known), then new mail."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from imapclient import IMAPClient
from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import mirror as crud_mirror
from imap2api.db import session_scope
from imap2api.enums import EventType
from imap2api.models import Folder
from imap2api.sync import moves
from imap2api.sync import plan as decide
from imap2api.sync.batch import fetch_batch, parse_batch, store_batch
from imap2api.sync.changes import apply_listed_changes, apply_reported_changes
from imap2api.sync.examine import FolderStatus, FolderVanished, examine
from imap2api.sync.folders import RemoteFolder
from imap2api.sync.imap import uid_fetch, uid_set
from imap2api.sync.lease import keep_lease
from imap2api.sync.pipeline import pipelined
from imap2api.sync.plan import StoredFolder
from imap2api.sync.progress import RunState

__all__ = ["FolderVanished", "sync_folders"]

log = logging.getLogger("imap2api.sync")


@dataclass(frozen=True)
class FolderPlan:
    """A folder whose expunges and flag changes are mirrored, with its new mail still to fetch."""

    remote: RemoteFolder
    folder_id: int
    status: FolderStatus  # as at planning; its uidnext is what the next sync starts from
    new_uids: list[int]
    previous_uidnext: int | None  # mail from here up is news (None: this generation's first sync)


def sync_folders(
    client: IMAPClient,
    state: RunState,
    folders: list[RemoteFolder],
    *,
    widen: Sequence[RemoteFolder] = (),
    listed: Mapping[str, FolderStatus] | None = None,
    stored: Mapping[str, Folder] | None = None,
) -> None:
    """Mirror ``folders``: plan each (changes applied, new UIDs counted), then fetch the new mail.

    The folders of ``widen`` are planned too, but only if ``folders`` lost some message: one that
    moved is then found in its new folder in this sync (a push sync names only the folders it
    heard about). The run's progress total is complete before the first message is fetched, and
    ``folders_synced`` grows as each folder is done. ``listed``: the folders' STATUS as LIST-STATUS
    gave it (``folders.list_folders_with_status``); a folder it proves unchanged is not examined.
    ``stored``: the server's folder rows, if the caller has just read them.
    """
    if stored is None:
        with session_scope() as session:
            stored = crud_mirror.folders_of(session, server_id=state.server_id)
    listed = listed or {}
    plans = []
    # Folders with held messages (sync/moves.py) are saved only once the run has settled them.
    settled_later = []
    for remote in _planned(folders, widen, state):
        try:
            plan = plan_folder(client, state, remote, stored.get(remote.name), listed.get(remote.name))
        except FolderVanished:
            log.info("folder %r vanished during the sync; skipped", remote.name)
            continue
        if plan is None:
            state.folder_done()  # unchanged; counted in the run row with the next write
        elif plan.new_uids:
            plans.append(plan)
        elif plan.folder_id in state.moves.folders:
            settled_later.append(plan)
        else:
            _finish_folder(state, plan)
    state.add_total(sum(len(plan.new_uids) for plan in plans))
    if plans:
        # The total is stored before the first message is fetched. With nothing to fetch the run's
        # outcome, written next, says it all: an idle account's re-sync skips this write.
        with session_scope() as session:
            keep_lease(session, server_id=state.server_id, holder=state.holder)
            state.store_progress(session)
    state.announce_progress()
    if len(plans) > 1:
        plans = _newest_of_each(client, state, plans, settled_later)
    for plan in plans:
        try:
            fetched = fetch_new_mail(client, state, plan)
        except FolderVanished:
            log.info("folder %r vanished during the sync; skipped", plan.remote.name)
            state.drop_total(len(plan.new_uids))
            continue
        if fetched:
            _fetched(state, plan, settled_later)
    if settled_later or state.moves.held:
        _settle(state, settled_later)


def _fetched(state: RunState, plan: FolderPlan, settled_later: list[FolderPlan]) -> None:
    """A folder whose new mail is all stored: saved now, or once the run has settled its held messages."""
    if plan.folder_id in state.moves.folders:
        settled_later.append(plan)
    else:
        _finish_folder(state, plan)


def _newest_of_each(
    client: IMAPClient, state: RunState, plans: list[FolderPlan], settled_later: list[FolderPlan]
) -> list[FolderPlan]:
    """Fetch every folder's newest mail (``plan.FIRST_BATCH``) before any folder's older mail, so
    that the account's newest messages are readable at once, whichever folders hold them; returns
    the plans with mail left to fetch (a folder fetched whole is done, one gone or recreated is left
    out)."""
    left = []
    for plan in plans:
        ordered = sorted(plan.new_uids)
        head, rest = ordered[-decide.FIRST_BATCH :], ordered[: -decide.FIRST_BATCH]
        try:
            fetched = fetch_new_mail(client, state, replace(plan, new_uids=head))
        except FolderVanished:
            log.info("folder %r vanished during the sync; skipped", plan.remote.name)
            state.drop_total(len(plan.new_uids))
            continue
        if not fetched:  # recreated: left for the next sync, as fetch_new_mail says
            state.drop_total(len(rest))
            continue
        if rest:
            left.append(replace(plan, new_uids=rest))
        else:
            _fetched(state, plan, settled_later)
    return left


def _planned(
    folders: list[RemoteFolder], widen: Sequence[RemoteFolder], state: RunState
) -> Iterator[RemoteFolder]:
    """``folders``, then ``widen`` if planning them held some message (a move's source)."""
    yield from folders
    if state.moves.held:
        yield from widen


def _stored(folder: Folder) -> StoredFolder:
    """The folder row's saved sync state, as the plan reads it."""
    return StoredFolder(
        uidvalidity=folder.uidvalidity,
        uidnext=folder.uidnext,
        highestmodseq=folder.highestmodseq,
        message_count=folder.message_count,
    )


def plan_folder(
    client: IMAPClient,
    state: RunState,
    remote: RemoteFolder,
    folder: Folder | None,
    listed: FolderStatus | None = None,
) -> FolderPlan | None:
    """Examine a folder, mirror its expunges and flag changes, and list its new mail; None if unchanged.

    ``listed`` (its STATUS from LIST-STATUS) proving it unchanged spares the EXAMINE too. An unchanged
    folder costs no database write: an idle account's re-sync writes only its run's rows.
    """
    if listed is not None and _untouched(folder, remote, listed, state):
        return None
    status, changes = examine(
        client, remote.name, decide.known_state(None if folder is None else _stored(folder))
    )
    if _untouched(folder, remote, status, state):
        return None
    with session_scope() as session:
        keep_lease(session, server_id=state.server_id, holder=state.holder)
        row = crud_mirror.ensure_folder(
            session,
            server_id=state.server_id,
            name=remote.name,
            delimiter=remote.delimiter,
            special_use=remote.special_use,
        )
        if folder is None and not state.initial:
            state.record_event(
                session,
                EventType.FOLDER_CREATED,
                {"folder": remote.name, "special_use": remote.special_use, "imap_server": state.server_id},
            )
        stored = _stored(row)
        if decide.unchanged(stored, status, state.limit_type):
            return None
        folder_id = row.id or 0
        same_generation = decide.same_generation(stored, status)
        # A recreated folder (new UIDVALIDITY) is replaced, never merged with its old mirror.
        state.removed_message_ids.update(
            crud_mirror.delete_stale_generations(session, folder_id=folder_id, uidvalidity=status.uidvalidity)
        )
        # Mail only counts as "arrived" when this folder generation was fully synced before.
        previous_uidnext = _arrival_boundary(session, row, status) if same_generation else None
        previous_modseq = row.highestmodseq if same_generation else None
    new_uids = None
    if changes is not None and decide.trust_reported(changes, previous_uidnext, state.limit_type):
        assert previous_uidnext is not None  # trusted only against a known arrival boundary
        new_uids = apply_reported_changes(client, state, folder_id, status, changes, previous_uidnext)
    uidnext = status.uidnext
    if new_uids is None:
        new_uids, seen_below = apply_listed_changes(
            client, state, folder_id, status, changes, previous_modseq
        )
        # No UIDNEXT from the server at all: the next sync counts mail above what this one saw as new.
        uidnext = decide.next_uidnext(uidnext, seen_below, previous_uidnext)
    planned = FolderStatus(
        uidvalidity=status.uidvalidity,
        uidnext=uidnext,
        exists=status.exists,
        highestmodseq=status.highestmodseq,
    )
    return FolderPlan(
        remote=remote,
        folder_id=folder_id,
        status=planned,
        new_uids=new_uids,
        previous_uidnext=previous_uidnext,
    )


def _untouched(folder: Folder | None, remote: RemoteFolder, status: FolderStatus, state: RunState) -> bool:
    """Whether ``status`` proves the mirrored folder unchanged, its LIST attributes included."""
    return (
        folder is not None
        and folder.delimiter == remote.delimiter
        and folder.special_use == remote.special_use
        and decide.unchanged(_stored(folder), status, state.limit_type)
    )


def _arrival_boundary(session: Session, folder: Folder, status: FolderStatus) -> int:
    """The UID from which mail in this folder is new since its last sync (``plan.arrival_boundary``)."""
    highest = None
    if folder.uidnext is None:  # only then does the highest mirrored UID count
        highest = crud_mirror.highest_uid(session, folder_id=folder.id or 0, uidvalidity=status.uidvalidity)
    return decide.arrival_boundary(folder.uidnext, highest)


def fetch_new_mail(client: IMAPClient, state: RunState, plan: FolderPlan) -> bool:
    """Fetch and store a planned folder's new mail in batches; False if the folder was recreated meanwhile."""
    status, _ = examine(client, plan.remote.name)
    if status.uidvalidity != plan.status.uidvalidity:
        log.info("folder %r was recreated during the sync; left for the next one", plan.remote.name)
        state.drop_total(len(plan.new_uids))
        return False
    done_before = state.done
    # Two threads: IMAP and parsing in the producer (the client is used only there while the
    # pipeline runs), the database here. A third thread for IMAP alone measured slower: all three
    # would share one GIL, and the handovers cost more than the overlap gains.
    fetched = (fetch_batch(client, batch) for batch in _batches(client, plan.new_uids))
    prepared = (
        parse_batch(
            state,
            batch,
            folder_id=plan.folder_id,
            folder_name=plan.remote.name,
            uidvalidity=status.uidvalidity,
        )
        for batch in fetched
    )
    try:
        pipelined(prepared, lambda batch: store_batch(state, batch, previous_uidnext=plan.previous_uidnext))
    finally:
        fetched.close()  # the producer is done with the client before the caller uses it again
    state.drop_total(len(plan.new_uids) - (state.done - done_before))  # expunged before they were fetched
    return True


def _finish_folder(state: RunState, plan: FolderPlan) -> None:
    """Record the folder's state for the next sync, and the run's progress, in one transaction."""
    with session_scope() as session:
        keep_lease(session, server_id=state.server_id, holder=state.holder)
        _save_folder(session, state, plan)
        state.store_progress(session)
    state.announce_progress()


def _settle(state: RunState, plans: list[FolderPlan]) -> None:
    """Delete the held messages no folder took, then save the folders that held them, in one transaction."""
    with session_scope() as session:
        keep_lease(session, server_id=state.server_id, holder=state.holder)
        moves.settle(session, state)
        for plan in plans:
            _save_folder(session, state, plan)
        state.store_progress(session)
    state.announce_progress()


def _save_folder(session: Session, state: RunState, plan: FolderPlan) -> None:
    """Store what the folder's EXAMINE said, so the next sync fetches only what changed after it."""
    status = plan.status
    crud_mirror.save_folder_state(
        session,
        folder_id=plan.folder_id,
        uidvalidity=status.uidvalidity,
        uidnext=status.uidnext,
        highestmodseq=status.highestmodseq,
        message_count=status.exists,
    )
    state.folder_done()


def _batches(client: IMAPClient, uids: list[int]) -> Iterator[list[tuple[int, int]]]:
    """(uid, size) batches bounded by message count and by bytes (``plan.batches``), so memory stays flat.

    Newest first (``plan.newest_first``): the highest UIDs in a small first batch, so a big folder's
    latest mail is readable at once; each batch is stored in UID order (its events too).
    """
    # Sizes are asked for in chunks too, so a huge folder never means one huge response.
    for chunk in decide.newest_first(uids):
        sizes = uid_fetch(client, uid_set(chunk), ["RFC822.SIZE"])
        for batch in decide.batches(
            chunk,
            {uid: int(sizes[uid].get(b"RFC822.SIZE", 0)) for uid in chunk if uid in sizes},
            max_count=settings.sync_batch_messages,
            max_bytes=settings.sync_batch_bytes,
            max_message_bytes=settings.sync_max_message_bytes,
        ):
            yield sorted(batch)
