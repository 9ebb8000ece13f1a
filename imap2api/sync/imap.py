"""Small IMAP helpers over imapclient: compact UID sets and FETCH over UID ranges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response


def uid_set(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` → ``"1:3,7,9:10"``: keeps commands short for large folders."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = None
    for uid in ordered:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


def uid_fetch(
    client: IMAPClient, uids: str, items: Sequence[str], modifiers: Sequence[str] = ()
) -> dict[int, dict[bytes, Any]]:
    """``UID FETCH`` over a UID set string (``"1:*"`` allowed), parsed as imapclient parses it.

    imapclient's own ``fetch`` only takes UID lists, which grow too long for big folders and
    cannot express ``1:*`` with ``CHANGEDSINCE``.
    """
    if not uids:
        return {}
    args = ["UID", "FETCH", uids, "(" + " ".join(items) + ")"]
    if modifiers:
        args.append("(" + " ".join(modifiers) + ")")
    imap = client._imap  # noqa: SLF001 - imapclient exposes no public raw-command API for FETCH
    tag = imap._command(*args)  # noqa: SLF001
    typ, data = imap._command_complete("FETCH", tag)  # noqa: SLF001
    client._checkok("fetch", typ, data)  # noqa: SLF001
    typ, data = imap._untagged_response(typ, data, "FETCH")  # noqa: SLF001
    if not data or data == [None]:
        return {}
    return parse_fetch_response(data, client.normalise_times, True)


def uid_search(client: IMAPClient, criteria: list[Any] | str = "ALL") -> list[int]:
    """``UID SEARCH`` returning plain ints."""
    return [int(uid) for uid in client.search(criteria)]


def flags_text(flags: tuple[bytes | str, ...]) -> str:
    """IMAP flags as one space-separated string (``\\Recent`` left out: it is per-session)."""
    names = (flag.decode() if isinstance(flag, bytes) else str(flag) for flag in flags)
    return " ".join(sorted(name for name in names if name.lower() != "\\recent"))
