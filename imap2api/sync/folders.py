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


def select_folders(
    folders: list[RemoteFolder], *, folders_to_sync: str, exclude_trash: bool
) -> list[RemoteFolder]:
    """The folders to mirror: the named ones (exact names) or all, minus trash/spam when asked.

    An explicitly named folder is mirrored even if it is the trash: naming it is a clear wish.
    """
    wanted = [name.strip() for name in folders_to_sync.split(",") if name.strip()]
    if wanted:
        by_name = {folder.name: folder for folder in folders}
        # INBOX is case-insensitive per RFC 3501; every other name is exact.
        inbox = next((folder for name, folder in by_name.items() if name.upper() == "INBOX"), None)
        if inbox is not None:
            by_name["INBOX"] = inbox
        return [by_name[name] for name in dict.fromkeys(wanted) if name in by_name]
    if exclude_trash:
        return [folder for folder in folders if not folder.is_trash]
    return list(folders)
