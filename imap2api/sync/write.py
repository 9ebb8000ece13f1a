"""Changing mail on the IMAP server: flags, moves, expunges, by UID, one command per folder and action.

Only imapclient's public commands are used. Every operation SELECTs its folder read-write, checks
that the folder is the generation the mirror knows (UIDVALIDITY), and works on the UIDs still
there; the mirror is then brought up to date by a sync of the folders touched (imap2api.services
.actions), so that what it stores is what the server answers, events included.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient

from imap2api.errors import Imap2ApiError
from imap2api.sync.folders import RemoteFolder
from imap2api.sync.imap import pop_untagged, uid_search, uid_set

_COPYUID = re.compile(r"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", re.IGNORECASE)
MAX_COPIED = 100_000
# Names of a Trash on servers without special-use flags (the leaf, case-insensitively).
TRASH_ONLY_NAMES = {
    "trash",
    "bin",
    "deleted",
    "deleted items",
    "deleted messages",
    "papierkorb",
    "corbeille",
    "papelera",
    "cestino",
}  # a range in a COPYUID answer longer than any batch is not believed
# Names of a Sent folder on servers without special-use flags (the leaf, case-insensitively).
SENT_ONLY_NAMES = {
    "sent",
    "sent items",
    "sent messages",
    "sent mail",
    "gesendet",
    "gesendete objekte",
    "envoyés",
    "éléments envoyés",
    "enviados",
    "posta inviata",
}
_APPENDUID = re.compile(r"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)


class ReadOnlyFolder(Imap2ApiError):
    """Raised when the server opens the folder read-only: nothing in it can be changed."""

    code = "READ_ONLY_FOLDER"


class UnsafeExpunge(Imap2ApiError):
    """Raised when removing a message would need a plain EXPUNGE (no UIDPLUS), which would also
    remove every other message flagged \\Deleted in the folder."""

    code = "UIDPLUS_REQUIRED"


class WriteRefused(Imap2ApiError):
    """Raised when the IMAP server refused a command (NO or BAD): the mirror is left as it was."""

    code = "IMAP_REFUSED"


@dataclass(frozen=True)
class FlagChange:
    """Flags to add and to remove (IMAP names: ``\\Seen``, ``$Label1``...)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


def _refused(exc: imaplib.IMAP4.error, what: str) -> WriteRefused:
    """The WriteRefused of a NO/BAD answer (its text, without Python's bytes notation)."""
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return WriteRefused(f"the IMAP server refused to {what}: {text[:300]}")


def open_for_writing(client: IMAPClient, folder: str, uidvalidity: int) -> bool:
    """SELECT ``folder`` read-write; False when it is another generation than ``uidvalidity`` (or gone)."""
    try:
        info = client.select_folder(folder)
    except imaplib.IMAP4.readonly:  # imaplib's answer to [READ-ONLY] on a read-write SELECT
        raise ReadOnlyFolder(f"the folder {folder!r} is read-only on the IMAP server") from None
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        return False
    if b"READ-ONLY" in info or info.get(b"READ-WRITE") is False:
        raise ReadOnlyFolder(f"the folder {folder!r} is read-only on the IMAP server")
    return int(info.get(b"UIDVALIDITY", 0) or 0) == uidvalidity


def present(client: IMAPClient, uids: Sequence[int]) -> set[int]:
    """Which of ``uids`` are still in the selected folder."""
    if not uids:
        return set()
    return set(uid_search(client, ["UID", uid_set(uids)])) & set(uids)


def store_flags(client: IMAPClient, uids: Sequence[int], change: FlagChange) -> None:
    """``UID STORE +FLAGS.SILENT`` / ``-FLAGS.SILENT`` in the selected folder."""
    try:
        if change.add:
            client.add_flags(list(uids), [flag.encode() for flag in change.add], silent=True)
        if change.remove:
            client.remove_flags(list(uids), [flag.encode() for flag in change.remove], silent=True)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise _refused(exc, "change the flags") from exc


def copied_uids(answers: Sequence[object]) -> tuple[int, dict[int, int]] | None:
    """The ``[COPYUID validity source destination]`` (RFC 4315) among answers: (UIDVALIDITY, old → new).

    The two sets list the UIDs in the same order; None when no answer carries one (no UIDPLUS).
    """
    for answer in answers:
        text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        match = _COPYUID.search(text)
        if match is None:
            continue
        sources, targets = _expand(match.group(2)), _expand(match.group(3))
        if sources is not None and targets is not None and len(sources) == len(targets):
            return int(match.group(1)), dict(zip(sources, targets, strict=True))
    return None


def _expand(uid_set_text: str) -> list[int] | None:
    """``3:5,9`` → [3, 4, 5, 9] (ranges as written: COPYUID pairs them up in order); None if absurd."""
    uids: list[int] = []
    for part in uid_set_text.split(","):
        low, _, high = part.partition(":")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        first, last = int(low), int(high or low)
        step = 1 if last >= first else -1
        if abs(last - first) > MAX_COPIED:
            return None
        uids.extend(range(first, last + step, step))
    return uids


def move(client: IMAPClient, uids: Sequence[int], destination: str) -> tuple[int, dict[int, int]] | None:
    """Move from the selected folder: MOVE (RFC 6851), else COPY + ``\\Deleted`` + UID EXPUNGE (UIDPLUS).

    Returns what COPYUID says (the destination's UIDVALIDITY, old → new UIDs) where the server sent
    it. Without either command, nothing is done: a plain EXPUNGE would remove other messages marked
    deleted.
    """
    try:
        if client.has_capability("MOVE"):
            answer = client.move(list(uids), destination)
            # RFC 6851: COPYUID comes in an untagged OK before the expunges (or in the tagged OK).
            return copied_uids([*pop_untagged(client, "OK"), answer])
        if not client.has_capability("UIDPLUS"):
            raise UnsafeExpunge(
                "this IMAP server has neither MOVE nor UIDPLUS: moving would need a plain EXPUNGE, which "
                "would also remove every other message marked deleted in the folder; nothing was moved"
            )
        answer = client.copy(list(uids), destination)
        client.add_flags(list(uids), [b"\\Deleted"], silent=True)
        client.uid_expunge(list(uids))
        return copied_uids([answer])
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise _refused(exc, f"move to {destination!r}") from exc


def expunge(client: IMAPClient, uids: Sequence[int]) -> None:
    """Remove for good from the selected folder: ``\\Deleted`` + UID EXPUNGE (UIDPLUS only)."""
    if not client.has_capability("UIDPLUS"):
        raise UnsafeExpunge(
            "this IMAP server has no UIDPLUS: deleting for good would need a plain EXPUNGE, which would "
            "also remove every other message marked deleted in the folder; nothing was deleted"
        )
    try:
        client.add_flags(list(uids), [b"\\Deleted"], silent=True)
        client.uid_expunge(list(uids))
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise _refused(exc, "delete") from exc


def trash_folder(folders: Sequence[RemoteFolder]) -> RemoteFolder | None:
    """The server's Trash: special-use ``\\Trash``, else the first folder with a usual trash name (never
    spam or junk, which the mirror's trash rule counts too)."""
    flagged = next((folder for folder in folders if folder.special_use == "\\Trash"), None)
    if flagged is not None:
        return flagged
    for folder in folders:
        leaf = folder.name.rsplit(folder.delimiter, 1)[-1] if folder.delimiter else folder.name
        if folder.special_use in ("", "\\Trash") and leaf.strip().lower() in TRASH_ONLY_NAMES:
            return folder
    return None


def sent_folder(folders: Sequence[RemoteFolder]) -> RemoteFolder | None:
    """The server's Sent folder: special-use ``\\Sent``, else the first folder with a usual name."""
    flagged = next((folder for folder in folders if folder.special_use == "\\Sent"), None)
    if flagged is not None:
        return flagged
    for folder in folders:
        leaf = folder.name.rsplit(folder.delimiter, 1)[-1] if folder.delimiter else folder.name
        if folder.special_use == "" and leaf.strip().lower() in SENT_ONLY_NAMES:
            return folder
    return None


def append_message(
    client: IMAPClient, folder: str, raw: bytes, *, flags: Sequence[str], when: datetime
) -> tuple[int, int] | None:
    """APPEND ``raw`` to ``folder``; (UIDVALIDITY, UID) from APPENDUID (UIDPLUS), else None."""
    try:
        answer = client.append(folder, raw, flags=[flag.encode() for flag in flags], msg_time=when)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise _refused(exc, f"file the message in {folder!r}") from exc
    text = answer.decode("ascii", "replace") if isinstance(answer, bytes) else str(answer)
    found = _APPENDUID.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else None
