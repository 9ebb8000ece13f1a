"""Ids that survive moves: mail that left a folder is kept until the run knows whether it moved.

A run plans every folder before it fetches any new mail (``sync.folder``). A message expunged
from a folder (or out of the sync limit) is not deleted when the plan finds it gone: it is held,
row and all. When the fetch phase then stores a new message of the same server that matches a
held one, the held row is rewritten to the new place (folder, UIDVALIDITY, UID, flags) and keeps
its id, thread, attachments and search entry: an ``email.moved`` event, no insert, no
``email.received``. Whatever is still held once every folder is fetched is deleted, with an
``email.deleted`` event each (``settle``). Since the whole plan comes first, the order in which
folders are listed does not matter.

A match is the same EMAILID where the server offers OBJECTID (RFC 8474: Cyrus does, Dovecot 2.3
does not); else the same Message-ID, RFC822.SIZE, INTERNALDATE (to the second), subject and
sender, and for a message without Message-ID the other four alone (servers keep INTERNALDATE and
the bytes on COPY and MOVE). Held rows stay readable until the run settles; a run that stops before leaves
them, and the folder's state is not saved, so the next run finds them gone again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from imap2api.crud import mirror as crud_mirror
from imap2api.enums import EventType
from imap2api.models import utcnow

if TYPE_CHECKING:
    from imap2api.sync.progress import RunState

Fingerprint = tuple[str, int, int, str, str]
# A copy mirrored this recently, of a message found gone later, was the first half of a move.
COPY_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class Vanished:
    """A mirrored message no longer in its folder, as the run holds it."""

    email_id: int
    folder_id: int
    folder: str
    message_id: str
    thread_id: str


def fingerprint(
    message_id: str, size: int | None, internal_date: datetime | None, subject: str, sender: str
) -> Fingerprint | None:
    """What a moved message has in both folders; None when it cannot be told apart (no INTERNALDATE)."""
    if internal_date is None:
        return None
    when = internal_date.replace(tzinfo=UTC) if internal_date.tzinfo is None else internal_date
    return (message_id or "", int(size or 0), int(when.timestamp()), subject or "", sender or "")


@dataclass
class Moves:
    """The run's held messages, by fingerprint, until they are matched or settled."""

    held: dict[int, Vanished] = field(default_factory=dict)
    by_print: dict[Fingerprint, list[int]] = field(default_factory=dict)
    by_object: dict[str, list[int]] = field(default_factory=dict)  # EMAILID (RFC 8474) → held ids
    # Where a move made by imap2api put a message, as COPYUID said: (folder, UIDVALIDITY, UID) → id.
    placed: dict[tuple[str, int, int], int] = field(default_factory=dict)
    folders: set[int] = field(default_factory=set)  # folders holding some: their state waits for settle

    def hold(self, folder_id: int, rows: Sequence[tuple[Any, ...]]) -> list[str]:
        """Hold rows of ``crud_mirror.vanished_*`` (id, folder, message_id, size, internal_date,
        subject, sender, thread_id, object_id); returns their Message-IDs."""
        message_ids = []
        for email_id, folder, message_id, size, internal_date, subject, sender, thread_id, object_id in rows:
            self.held[email_id] = Vanished(email_id, folder_id, folder, message_id or "", thread_id or "")
            self.folders.add(folder_id)
            if object_id:
                self.by_object.setdefault(object_id, []).append(email_id)
            key = fingerprint(message_id, size, internal_date, subject, sender)
            if key is not None:
                self.by_print.setdefault(key, []).append(email_id)
            if message_id:
                message_ids.append(message_id)
        return message_ids

    def held_in(self, folder_id: int) -> int:
        """How many held messages are (still) mirrored in a folder."""
        return sum(1 for vanished in self.held.values() if vanished.folder_id == folder_id)

    def take(self, row: dict[str, Any]) -> Vanished | None:
        """The held message a newly fetched row (``batch.email_row``) is, if any; no longer held then.

        Where imap2api moved it (COPYUID), exactly; else its EMAILID where the server has OBJECTID
        (exact, whatever the content); else its fingerprint.
        """
        placed = self.placed.pop((row["folder"], row["uidvalidity"], row["uid"]), None)
        if placed is not None and placed in self.held:
            return self.held.pop(placed)
        if row.get("object_id"):
            return self._pop(self.by_object.get(row["object_id"]))
        key = fingerprint(row["message_id"], row["size"], row["internal_date"], row["subject"], row["sender"])
        return self._pop(self.by_print.get(key) if key is not None else None)

    def _pop(self, candidates: list[int] | None) -> Vanished | None:
        """The first candidate still held, no longer held."""
        while candidates:
            vanished = self.held.pop(candidates.pop(0), None)
            if vanished is not None:
                return vanished
        return None

    def take_from_elsewhere(
        self, key: Fingerprint | None, object_id: str, *, folder_id: int
    ) -> Vanished | None:
        """The held message of EMAILID ``object_id`` (if given) or fingerprint ``key`` from a folder other
        than ``folder_id``; no longer held then."""
        if object_id:
            candidates = self.by_object.get(object_id, [])
        else:
            candidates = self.by_print.get(key, []) if key is not None else []
        for email_id in candidates:
            vanished = self.held.get(email_id)
            if vanished is not None and vanished.folder_id != folder_id:
                del self.held[email_id]
                return vanished
        return None

    def remaining(self) -> list[Vanished]:
        """The held messages nothing matched: they are gone."""
        return list(self.held.values())


def store_moves(session: Session, state: RunState, moved: list[tuple[dict[str, Any], Vanished]]) -> None:
    """Rewrite each held row to its new place and write ``email.moved`` (in the caller's transaction)."""
    for row, vanished in moved:
        crud_mirror.move_email(session, email_id=vanished.email_id, row=row)
        if vanished.folder_id == row["folder_id"]:
            continue  # expunged and appended again to the same folder: the same email, no move
        state.record_event(
            session,
            EventType.EMAIL_MOVED,
            {
                "id": vanished.email_id,
                "message_id": vanished.message_id,
                "from_folder": vanished.folder,
                "to_folder": row["folder"],
                "thread_id": vanished.thread_id,
                "flags": row["flags"],
                "seen": row["seen"],
                "flagged": row["flagged"],
                "answered": row["answered"],
                "imap_server": state.server_id,
            },
        )


def adopt_recent_copies(session: Session, state: RunState) -> int:
    """Give held messages the place of a copy mirrored in the last ``COPY_WINDOW_SECONDS``; how many.

    A client without MOVE moves by COPY, then ``\\Deleted`` and EXPUNGE. When a sync sees the copy
    before the expunge (a push sync, heard between the two), the copy is mirrored as an email of its
    own (never announced: its Message-ID is known), and a later sync finds the original gone. That is a
    move: the original takes the copy's place and keeps its id (``email.moved``); the copy's row goes
    (a tombstone in the change feed). Only messages with a Message-ID are matched this way.
    """
    held = state.moves.remaining()
    message_ids = [vanished.message_id for vanished in held if vanished.message_id]
    if not message_ids:
        return 0
    since = utcnow() - timedelta(seconds=COPY_WINDOW_SECONDS)
    copies = crud_mirror.recent_copies(
        session, server_id=state.server_id, message_ids=message_ids, since=since
    )
    adopted: list[tuple[dict[str, Any], Vanished]] = []
    for copy in copies:
        if copy["id"] in state.moves.held:
            continue  # held itself
        key = fingerprint(
            copy["message_id"], copy["size"], copy["internal_date"], copy["subject"], copy["sender"]
        )
        vanished = state.moves.take_from_elsewhere(key, copy["object_id"], folder_id=copy["folder_id"])
        if vanished is not None:
            adopted.append((copy, vanished))
    if adopted:
        # The copies' rows go first: their place (folder, UIDVALIDITY, UID) is unique.
        crud_mirror.delete_emails(session, email_ids=[copy["id"] for copy, _ in adopted])
        store_moves(session, state, adopted)
        state.updated += len(adopted)
    return len(adopted)


def settle(session: Session, state: RunState) -> int:
    """Delete the held messages no other folder took, each with ``email.deleted``; returns how many."""
    adopt_recent_copies(session, state)
    gone = state.moves.remaining()
    crud_mirror.delete_emails(session, email_ids=[vanished.email_id for vanished in gone])
    for vanished in gone:
        state.record_event(
            session,
            EventType.EMAIL_DELETED,
            {
                "id": vanished.email_id,
                "message_id": vanished.message_id,
                "folder": vanished.folder,
                "thread_id": vanished.thread_id,
                "imap_server": state.server_id,
            },
        )
    state.moves.held.clear()
    state.moves.by_print.clear()
    state.moves.by_object.clear()
    state.moves.placed.clear()
    state.moves.folders.clear()
    state.deleted += len(gone)
    return len(gone)
