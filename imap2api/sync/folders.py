"""Which folders to mirror: LIST with special-use flags, the user's selection and the trash rule."""

from __future__ import annotations

from dataclasses import dataclass

from imapclient import IMAPClient

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
    folders = []
    for flags, delimiter, name in client.list_folders():
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
