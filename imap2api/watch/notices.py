"""What the unsolicited responses of a watched connection mean for the mirror (pure, no I/O).

imapclient parses each IDLE response into a tuple: ``(3, b"EXISTS")``, ``(2, b"EXPUNGE")``,
``(4, b"FETCH", (...))``, ``(b"VANISHED", ...)`` on the selected folder; with NOTIFY,
``(b"STATUS", name, (...))`` for another folder and ``(b"LIST", flags, delimiter, name)`` when a
folder was created, renamed or deleted. ``(b"OK", b"Still here")`` keep-alives mean nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imapclient.imap_utf7 import decode as decode_utf7

SELECTED_CHANGES = {b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED"}


@dataclass
class Notice:
    """Folders whose content changed, whether the folder list changed, whether the server said BYE."""

    folders: set[str] = field(default_factory=set)
    folder_list: bool = False
    bye: bool = False

    def __bool__(self) -> bool:
        return bool(self.folders) or self.folder_list or self.bye


def _name(raw: Any) -> str:
    """A folder name as sent (modified UTF-7), as the folder list has it."""
    if isinstance(raw, bytes):
        try:
            return str(decode_utf7(raw))
        except (UnicodeError, ValueError):
            return raw.decode("utf-8", errors="replace")
    return str(raw)


def _word(item: Any) -> bytes:
    """A response's keyword (upper case), wherever it stands."""
    return item.upper() if isinstance(item, bytes) else b""


def read_responses(responses: Iterable[Sequence[Any]], *, selected: str | None) -> Notice:
    """The Notice of a batch of unsolicited responses; ``selected`` is the folder IDLE runs on."""
    notice = Notice()
    for response in responses:
        if not response:
            continue
        first = _word(response[0])
        second = _word(response[1]) if len(response) > 1 else b""
        if first == b"BYE":
            notice.bye = True
        elif first == b"STATUS" and len(response) > 1:
            notice.folders.add(_name(response[1]))
        elif first == b"LIST":
            notice.folder_list = True
        elif selected is not None and (first == b"VANISHED" or second in SELECTED_CHANGES):
            notice.folders.add(selected)
    return notice


def status_key(status: dict[bytes, Any]) -> tuple[Any, ...]:
    """What a polled folder's ``STATUS`` answer is compared by: a change in any means a push sync."""
    return tuple(
        status.get(item) for item in (b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES", b"UNSEEN", b"HIGHESTMODSEQ")
    )


def canonical(name: str, known: Iterable[str]) -> str | None:
    """``name`` as the selected folders spell it (INBOX in any case), or None if it is not one of them."""
    for folder in known:
        if folder == name or (folder.upper() == "INBOX" and name.upper() == "INBOX"):
            return folder
    return None
