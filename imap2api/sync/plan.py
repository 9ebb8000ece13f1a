"""The sync's decisions, without I/O: plain data in (what the server said, what the mirror holds), out.

What EXAMINE's numbers mean against the stored state, which UIDs are new or gone, which flags
changed, how new mail is cut into batches, what the sync limit lets through. The modules around
(``folder``, ``changes``) ask the server and the database, and call these to decide.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

DAYS_PER_UNIT = {"days": 1, "weeks": 7, "months": 30}
SIZE_CHUNK = 5000  # UIDs per RFC822.SIZE request, so a huge folder never means one huge response
# The newest messages of a folder go first in a batch of their own, so they are readable within the
# first second of a big first sync (the API lists newest first); the rest follows in full batches.
FIRST_BATCH = 50

Batch = list[tuple[int, int]]  # (uid, RFC822.SIZE)


@dataclass(frozen=True)
class FolderStatus:
    """What EXAMINE (and, where it said nothing of UIDNEXT, STATUS) told us about a folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None


@dataclass
class Changes:
    """What QRESYNC reported since the mirror's state: expunged UIDs (as ranges) and changed flags."""

    vanished: list[tuple[int, int]] = field(default_factory=list)
    flags: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KnownState:
    """The folder as the mirror saw it at its last completed sync."""

    uidvalidity: int
    highestmodseq: int
    uidnext: int


@dataclass(frozen=True)
class StoredFolder:
    """A folder's state as saved after its last completed sync (any of it may be missing)."""

    uidvalidity: int | None
    uidnext: int | None
    highestmodseq: int | None
    message_count: int | None


# ---------------------------------------------------------------------------------------------
# The folder's status against the stored state
# ---------------------------------------------------------------------------------------------


def known_state(stored: StoredFolder | None) -> KnownState | None:
    """What QRESYNC needs from the folder's last completed sync, when the mirror has all of it."""
    if stored is None or stored.uidvalidity is None or stored.highestmodseq is None or stored.uidnext is None:
        return None
    return KnownState(
        uidvalidity=stored.uidvalidity, highestmodseq=stored.highestmodseq, uidnext=stored.uidnext
    )


def unchanged(stored: StoredFolder, status: FolderStatus, limit_type: str) -> bool:
    """Whether EXAMINE alone proves nothing changed since the last completed sync.

    New mail moves UIDNEXT, expunges lower EXISTS, flag changes move HIGHESTMODSEQ. Without
    CONDSTORE flags could have changed unseen, and time-based limits move with the clock.
    """
    return (
        stored.uidvalidity == status.uidvalidity
        and status.uidnext is not None
        and stored.uidnext == status.uidnext
        and stored.message_count == status.exists
        and status.highestmodseq is not None
        and stored.highestmodseq == status.highestmodseq
        and limit_type in ("all", "last_n")
    )


def same_generation(stored: StoredFolder, status: FolderStatus) -> bool:
    """Whether the mirror holds this generation of the folder (same UIDVALIDITY): else it is replaced."""
    return stored.uidvalidity == status.uidvalidity


def arrival_boundary(stored_uidnext: int | None, highest_mirrored_uid: int | None) -> int:
    """The UID from which mail is new since the last sync: the UIDNEXT stored then, else highest mirrored + 1.

    The second is for a folder synced before imap2api kept a UIDNEXT for servers that never send it.
    """
    if stored_uidnext is not None:
        return stored_uidnext
    return (highest_mirrored_uid or 0) + 1


def trust_reported(changes: Changes | None, previous_uidnext: int | None, limit_type: str) -> bool:
    """Whether QRESYNC's report can stand for listing the folder.

    Only against a fully synced generation (a known arrival boundary) and with no sync limit,
    since a limit needs the folder's UIDs (or dates) to know what falls out of it.
    """
    return changes is not None and previous_uidnext is not None and limit_type == "all"


def next_uidnext(status_uidnext: int | None, seen_below: int, previous_uidnext: int | None) -> int:
    """The UIDNEXT saved for the next sync: the server's, or without one, above all this sync saw."""
    return status_uidnext or max(seen_below, previous_uidnext or 1)


# ---------------------------------------------------------------------------------------------
# Which UIDs: the sync limit, new and gone
# ---------------------------------------------------------------------------------------------


def since(limit_type: str, limit_value: int | None, now: datetime) -> datetime | None:
    """The start of a time-based limit's window (``SEARCH SINCE`` its date); None for other limits."""
    if limit_type in DAYS_PER_UNIT and limit_value:
        return now - timedelta(days=limit_value * DAYS_PER_UNIT[limit_type])
    return None


def within_limit(uids: Iterable[int], limit_type: str, limit_value: int | None) -> set[int]:
    """Of a folder's UIDs (all of them), those a count limit keeps: the newest ``limit_value``."""
    if limit_type == "last_n" and limit_value:
        return set(sorted(uids)[-limit_value:])
    return set(uids)


@dataclass(frozen=True)
class ListedDiff:
    """The server's wanted UIDs against the mirrored ones."""

    new: list[int]  # wanted, not mirrored: to fetch (ascending)
    gone: list[int]  # mirrored, no longer wanted: to delete (ascending)
    kept: set[int]  # on both sides: their flags may have changed
    seen_below: int  # the highest UID on either side + 1 (1 when both are empty)


def listed_diff(stored: Collection[int], wanted: set[int]) -> ListedDiff:
    """Compare the mirror's UIDs with the ones the server has (and the limit lets through)."""
    mirrored = set(stored)
    return ListedDiff(
        new=sorted(wanted - mirrored),
        gone=sorted(mirrored - wanted),
        kept=mirrored & wanted,
        seen_below=max(wanted | mirrored, default=0) + 1,
    )


def arrival_range(status_uidnext: int | None, boundary: int) -> tuple[int, int] | None:
    """The UIDs (first, last) to search for mail that arrived since ``boundary``; None if none can have."""
    uidnext = status_uidnext or boundary
    if uidnext > boundary:
        return boundary, uidnext - 1
    return None


def arrivals(found: Iterable[int], first: int, last: int, already: Collection[int]) -> list[int]:
    """The UIDs a search found within [first, last] (a server may answer more), minus those mirrored."""
    return sorted({uid for uid in found if first <= uid <= last} - set(already))


def consistent(mirrored: int, new: int, exists: int) -> bool:
    """Whether the mirror plus the new mail accounts for every message EXISTS counts."""
    return mirrored + new == exists


# ---------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------


class FlagSource(Enum):
    """Where the current flags of the kept messages come from."""

    NOTHING = "nothing"  # no kept message, or HIGHESTMODSEQ has not moved: no flag changed
    REPORTED = "reported"  # QRESYNC's EXAMINE reported them
    CHANGED_SINCE = "changed_since"  # UID FETCH 1:* (FLAGS) (CHANGEDSINCE previous modseq)
    SWEEP = "sweep"  # UID FETCH of every kept message's FLAGS


def flag_source(
    *, kept: bool, reported: bool, highestmodseq: int | None, previous_modseq: int | None
) -> FlagSource:
    """How to learn the kept messages' flags, cheapest first."""
    if not kept:
        return FlagSource.NOTHING
    if reported:
        return FlagSource.REPORTED
    if highestmodseq is not None and previous_modseq is not None:
        if highestmodseq == previous_modseq:
            return FlagSource.NOTHING
        return FlagSource.CHANGED_SINCE
    return FlagSource.SWEEP


def flag_diff(
    current: Mapping[int, str], stored: Mapping[int, str], among: Collection[int]
) -> dict[int, str]:
    """The new flags (as ``flags_text`` writes them) of the messages in ``among`` whose flags changed.

    Messages not mirrored are no flag change, whatever the server reports (they are new mail or
    outside the limit). The comparison is exact: the same flags always give the same text.
    """
    return {
        uid: flags
        for uid, flags in current.items()
        if uid in among and uid in stored and flags != stored[uid]
    }


def reported_candidates(reported: Iterable[int], boundary: int, already: Collection[int]) -> list[int]:
    """The UIDs with reported flags that may be mirrored: below the boundary, or stored by a cut-off sync."""
    return [uid for uid in reported if uid < boundary or uid in already]


# ---------------------------------------------------------------------------------------------
# Batches of new mail
# ---------------------------------------------------------------------------------------------


def chunks(uids: Sequence[int], size: int = SIZE_CHUNK) -> Iterator[Sequence[int]]:
    """``uids`` in slices of ``size``, in order."""
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


def newest_first(
    uids: Sequence[int], *, first: int = FIRST_BATCH, size: int = SIZE_CHUNK
) -> Iterator[list[int]]:
    """``uids`` from the highest down: a slice of the ``first`` highest, then slices of ``size``.

    The order of a folder's fetch never matters for convergence: its state is saved only once the
    whole fetch is stored, and the next sync lists UIDs against the mirror.
    """
    ordered = sorted(uids, reverse=True)
    head = max(1, first)
    yield from (ordered[:head],) if ordered else ()
    for start in range(head, len(ordered), size):
        yield ordered[start : start + size]


def batches(
    uids: Iterable[int], sizes: Mapping[int, int], *, max_count: int, max_bytes: int, max_message_bytes: int
) -> Iterator[Batch]:
    """(uid, size) batches of ``uids`` in order, bounded by message count and by bytes, so memory stays flat.

    A UID without a size was expunged since it was listed, and is left out. A message counts for
    at most ``max_message_bytes`` (only that much of it is fetched), but a batch is closed before
    a message whose full size would take it over ``max_bytes``. Every batch holds at least one message.
    """
    batch: Batch = []
    batch_bytes = 0
    for uid in uids:
        if uid not in sizes:
            continue
        size = sizes[uid]
        if batch and (len(batch) >= max_count or batch_bytes + size > max_bytes):
            yield batch
            batch, batch_bytes = [], 0
        batch.append((uid, size))
        batch_bytes += min(size, max_message_bytes)
    if batch:
        yield batch
