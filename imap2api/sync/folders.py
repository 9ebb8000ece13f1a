"""Which folders to mirror: LIST with special-use flags, the user's selection and the trash rule."""

from __future__ import annotations

import imaplib
import logging
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import ProtocolError
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response

from imap2api.sync.imap import extension_enabled, imaplib_connection
from imap2api.sync.plan import FolderStatus

log = logging.getLogger("imap2api.sync")

SPECIAL_USE = (b"\\All", b"\\Archive", b"\\Drafts", b"\\Flagged", b"\\Junk", b"\\Sent", b"\\Trash")
# Names that mean trash or spam on servers that do not flag them (compared case-insensitively,
# on the last path component).
TRASH_NAMES = {
    "trash",
    "junk",
    "spam",
    "bin",
    "deleted",
    "deleted items",
    "deleted messages",
    "junk e-mail",
    "junk email",
    "bulk mail",
    "papierkorb",
    "corbeille",
    "papelera",
    "cestino",
}


@dataclass(frozen=True)
class RemoteFolder:
    """A selectable folder as the server lists it."""

    name: str
    delimiter: str  # "" when the server has none (LIST answers NIL)
    special_use: str  # "\\Sent", "\\Trash"... or ""

    @property
    def is_trash(self) -> bool:
        """Whether this is the trash or spam folder, by flag or, failing that, by name."""
        if self.special_use in ("\\Trash", "\\Junk"):
            return True
        leaf = self.name.rsplit(self.delimiter, 1)[-1] if self.delimiter else self.name
        return leaf.strip().lower() in TRASH_NAMES


def list_remote_folders(client: IMAPClient) -> list[RemoteFolder]:
    """Every selectable folder on the server."""
    return _remote_folders(client.list_folders())


# What LIST-STATUS asks of each folder: all ``plan.unchanged`` compares with the stored state.
LISTED_STATUS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ")


def list_folders_with_status(client: IMAPClient) -> tuple[list[RemoteFolder], dict[str, FolderStatus]]:
    """Every selectable folder, and by name the STATUS the same LIST gave where the server has LIST-STATUS.

    One round trip (RFC 5819 ``LIST "" "*" RETURN (STATUS (...))``) then tells every unchanged folder
    from the others, so an idle account is re-synced without a single EXAMINE. Only with CONDSTORE
    on: without HIGHESTMODSEQ no folder can be proven unchanged (``plan.unchanged``), so each is
    examined anyway and a plain LIST is all it takes. A server refusing the command gets a plain LIST.
    """
    if not (client.has_capability("LIST-STATUS") and extension_enabled(client, "CONDSTORE")):
        return list_remote_folders(client), {}
    returns = f"STATUS ({' '.join(LISTED_STATUS)})"
    if client.has_capability("SPECIAL-USE"):
        returns = "SPECIAL-USE " + returns  # RFC 6154: asked for, the special-use flags come for sure
    imap = imaplib_connection(client)
    imap.untagged_responses.pop("STATUS", None)  # left by an earlier command: not this answer's
    try:
        # imaplib's ``list`` sends its arguments as given: the RETURN options ride on the pattern.
        typ, data = imap.list('""', f'"*" RETURN ({returns})')
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        typ, data = "NO", []
    statuses = imap.untagged_responses.pop("STATUS", [])
    if typ != "OK":
        log.info("the server refused LIST-STATUS; listing without it")
        return list_remote_folders(client), {}
    try:
        folders = _remote_folders(_listed(data, client.folder_encode))
        return folders, _statuses(statuses, client.folder_encode)
    except (ProtocolError, ValueError, TypeError, IndexError):
        log.info("unreadable LIST-STATUS answer; listing without it")
        return list_remote_folders(client), {}


def _folder_name(name: Any, folder_encode: bool) -> Any:
    """A folder name as imapclient's ``list_folders`` gives it (modified UTF-7 decoded)."""
    if isinstance(name, int):  # a quoted all-digit name parses as a number
        return str(name)
    return decode_utf7(name) if folder_encode else name


def _listed(data: list[Any], folder_encode: bool) -> list[tuple[Any, Any, Any]]:
    """The (flags, delimiter, name) triples of untagged LIST responses, as ``list_folders`` returns them."""
    parsed = parse_response([item for item in data if item not in (b"", None)])
    if len(parsed) % 3:
        raise ValueError("LIST responses of the wrong shape")
    return [
        (parsed[at], parsed[at + 1], _folder_name(parsed[at + 2], folder_encode))
        for at in range(0, len(parsed), 3)
    ]


def _statuses(responses: list[Any], folder_encode: bool) -> dict[str, FolderStatus]:
    """The untagged STATUS responses of a LIST-STATUS by folder name (a folder lacking an item: left out)."""
    found = {}
    for response in responses:
        if response in (b"", None):
            continue
        parsed = parse_response([response])
        if len(parsed) != 2 or not isinstance(parsed[1], tuple) or len(parsed[1]) % 2:
            continue
        items = {
            (key.decode() if isinstance(key, bytes) else str(key)).upper(): value
            for key, value in zip(parsed[1][::2], parsed[1][1::2], strict=True)
        }
        values = [items.get(key) for key in ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")]
        numbers = [value for value in values if isinstance(value, int)]
        if len(numbers) != len(values):
            continue
        name = _folder_name(parsed[0], folder_encode)
        if isinstance(name, bytes):
            name = name.decode("utf-8", errors="replace")
        uidvalidity, uidnext, messages, modseq = numbers
        found[name] = FolderStatus(
            uidvalidity=uidvalidity, uidnext=uidnext or None, exists=messages, highestmodseq=modseq
        )
    return found


def _remote_folders(listed: list[tuple[Any, Any, Any]]) -> list[RemoteFolder]:
    """The selectable folders of (flags, delimiter, name) LIST triples."""
    folders = []
    for flags, delimiter, name in listed:
        lowered = {flag.lower() for flag in flags}
        if b"\\noselect" in lowered or b"\\nonexistent" in lowered:
            continue
        special = next((flag.decode() for flag in flags if flag in SPECIAL_USE), "")
        if isinstance(name, bytes):  # undecodable modified UTF-7: keep it readable
            name = name.decode("utf-8", errors="replace")
        # NIL delimiter: a flat namespace, where "/" is just a character of the name.
        separator = delimiter.decode(errors="replace") if isinstance(delimiter, bytes) else (delimiter or "")
        folders.append(RemoteFolder(name=name, delimiter=separator, special_use=special))
    return folders


def _wanted(folders_to_sync: str) -> list[str]:
    """The names ``folders_to_sync`` gives, in order, each once."""
    return list(dict.fromkeys(name.strip() for name in folders_to_sync.split(",") if name.strip()))


def _by_name(folders: list[RemoteFolder]) -> dict[str, RemoteFolder]:
    """The folders by name, the inbox also under ``INBOX`` (however the server spells it)."""
    by_name = {folder.name: folder for folder in folders}
    inbox = next((folder for name, folder in by_name.items() if name.upper() == "INBOX"), None)
    if inbox is not None:
        by_name["INBOX"] = inbox
    return by_name


def _key(name: str) -> str:
    """How a wanted name is looked up: INBOX is case-insensitive per RFC 3501, every other name is exact."""
    return "INBOX" if name.upper() == "INBOX" else name


def select_folders(
    folders: list[RemoteFolder], *, folders_to_sync: str, exclude_trash: bool
) -> list[RemoteFolder]:
    """The folders to mirror: the named ones (exact names) or all, minus trash/spam when asked.

    An explicitly named folder is mirrored even if it is the trash: naming it is a clear wish.
    """
    wanted = _wanted(folders_to_sync)
    if wanted:
        by_name = _by_name(folders)
        chosen = [by_name[_key(name)] for name in wanted if _key(name) in by_name]
        return list({folder.name: folder for folder in chosen}.values())  # "INBOX,inbox" is one folder
    if exclude_trash:
        return [folder for folder in folders if not folder.is_trash]
    return list(folders)


def missing_folders(folders: list[RemoteFolder], *, folders_to_sync: str) -> list[str]:
    """The names in ``folders_to_sync`` that no folder of the server has (as written, in order)."""
    by_name = _by_name(folders)
    return [name for name in _wanted(folders_to_sync) if _key(name) not in by_name]


def near_misses(folders: list[RemoteFolder], missing: list[str]) -> dict[str, str]:
    """For each missing name that differs from a folder's only in case: that folder's name."""
    by_lower = {folder.name.lower(): folder.name for folder in folders}
    return {name: by_lower[name.lower()] for name in missing if name.lower() in by_lower}
