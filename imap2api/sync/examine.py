"""Opening a folder read-only (EXAMINE): its status, and with QRESYNC what changed since a known state."""

from __future__ import annotations

import imaplib
import logging

from imapclient import IMAPClient
from imapclient.exceptions import ProtocolError

from imap2api.sync.imap import (
    examine_qresync,
    extension_enabled,
    fetched_by_uid,
    flags_text,
    pop_untagged,
    uid_ranges,
)
from imap2api.sync.plan import Changes, FolderStatus, KnownState

__all__ = ["Changes", "FolderStatus", "FolderVanished", "KnownState", "examine"]

log = logging.getLogger("imap2api.sync")
MAX_VANISHED_RANGES = 1000


class FolderVanished(Exception):
    """Raised when a listed folder can no longer be selected (deleted meanwhile)."""


def examine(
    client: IMAPClient, name: str, known: KnownState | None = None
) -> tuple[FolderStatus, Changes | None]:
    """EXAMINE ``name``; with QRESYNC enabled and a ``known`` state, also what changed since (RFC 7162).

    Changes is None when there is nothing to compare with or the server did not answer with
    QRESYNC data (a new UIDVALIDITY, say): the caller then lists the folder.
    """
    qresync = known is not None and extension_enabled(client, "QRESYNC")
    try:
        if qresync and known is not None:
            answer = examine_qresync(
                client, name, uidvalidity=known.uidvalidity, highestmodseq=known.highestmodseq
            )
            if answer is None:
                raise FolderVanished(name)
            info = answer
        else:
            info = client.select_folder(name, readonly=True)
    except imaplib.IMAP4.abort:
        raise  # the connection is gone, not the folder: the run fails instead of dropping the rest
    except imaplib.IMAP4.error as exc:
        raise FolderVanished(name) from exc
    status = _status(client, name, info)
    changes = None
    if qresync and known is not None and status.uidvalidity == known.uidvalidity:
        changes = _reported_changes(client, below=max(status.uidnext or 0, known.uidnext))
    return status, changes


def _status(client: IMAPClient, name: str, info: dict[bytes, object]) -> FolderStatus:
    """The FolderStatus of an EXAMINE answer, asking STATUS for UIDNEXT where the answer had none."""
    uidnext = info.get(b"UIDNEXT")
    if uidnext is None:
        # Courier, for one, leaves UIDNEXT out of SELECT; without it new mail could not be told from
        # old. STATUS is asked before any UID SEARCH, so nothing below this UIDNEXT is left unseen.
        uidnext = _status_uidnext(client, name)
    modseq = info.get(b"HIGHESTMODSEQ")
    if not extension_enabled(client, "CONDSTORE"):
        modseq = None  # a server may send it unasked; without CONDSTORE we cannot use CHANGEDSINCE
    return FolderStatus(
        uidvalidity=int(info[b"UIDVALIDITY"]),  # type: ignore[call-overload]
        uidnext=int(uidnext) if isinstance(uidnext, int) else None,
        exists=int(info.get(b"EXISTS", 0)),  # type: ignore[call-overload]
        highestmodseq=int(modseq) if isinstance(modseq, int) else None,
    )


def _status_uidnext(client: IMAPClient, name: str) -> int | None:
    """UIDNEXT from ``STATUS name (UIDNEXT)``; None if the server will not say."""
    try:
        value = client.folder_status(name, [b"UIDNEXT"]).get(b"UIDNEXT")
    except (imaplib.IMAP4.error, ProtocolError, ValueError, IndexError, TypeError):
        return None  # refused, or an answer imapclient cannot read: no UIDNEXT then
    return int(value) if isinstance(value, int) and value > 0 else None


def _reported_changes(client: IMAPClient, *, below: int) -> Changes | None:
    """The VANISHED (EARLIER) and FETCH responses of a QRESYNC EXAMINE; None if they make no sense.

    No UID at or above the folder's UIDNEXT exists, which bounds whatever ranges a server sends.
    """
    changes = Changes()
    for line in pop_untagged(client, "VANISHED"):
        text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
        text = text.strip()
        if text.upper().startswith("(EARLIER)"):
            text = text[len("(EARLIER)") :].strip()
        ranges = uid_ranges(text, below=below)
        if ranges is None:
            log.info("unparsable VANISHED response %r; listing the folder instead", text[:100])
            return None
        changes.vanished += ranges
        if len(changes.vanished) > MAX_VANISHED_RANGES:
            # Each range costs queries: a server answering 1,3,5,… is cheaper listed than believed.
            log.info("more than %d VANISHED ranges; listing the folder instead", MAX_VANISHED_RANGES)
            return None
    try:
        fetched = fetched_by_uid(pop_untagged(client, "FETCH"), client.normalise_times)
    except ProtocolError:
        log.info("unparsable FETCH responses to a QRESYNC EXAMINE; listing the folder instead")
        return None
    for uid, data in fetched.items():
        if b"FLAGS" in data:
            changes.flags[uid] = flags_text(data[b"FLAGS"])
    return changes
