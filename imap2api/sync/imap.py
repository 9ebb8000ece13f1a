"""Small IMAP helpers over imapclient: extensions, compact UID sets, UID ranges and FETCH over them."""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

# What ENABLE switched on, per connection (imapclient does not remember it).
_ENABLED: weakref.WeakKeyDictionary[IMAPClient, frozenset[str]] = weakref.WeakKeyDictionary()
_UID_RANGE = re.compile(r"^(\d+)(?::(\d+))?$")
MAX_UID = 2**32 - 1


def no_delay(client: IMAPClient) -> None:
    """Send each command at once (TCP_NODELAY).

    imapclient writes some commands (LOGIN, ENABLE, every UID SEARCH) in two parts; with Nagle's
    algorithm the second part waits for the server to acknowledge the first, and a server that
    delays its ACKs (40 ms on Linux, up to 200 ms elsewhere) stalls every such command.
    """
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket: nothing to tune
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def enable_extensions(client: IMAPClient) -> frozenset[str]:
    """ENABLE QRESYNC (which implies CONDSTORE) and CONDSTORE where offered; returns what is now on.

    A server without ENABLE, or refusing it, is synced without them (a FLAGS sweep, listed UIDs).
    """
    wanted = [name for name in ("QRESYNC", "CONDSTORE") if client.has_capability(name)]
    enabled: frozenset[str] = frozenset()
    if wanted and client.has_capability("ENABLE"):
        try:
            answer = client.enable(*wanted)
        except imaplib.IMAP4.error:
            answer = []
        enabled = frozenset(
            (item.decode() if isinstance(item, bytes) else str(item)).upper() for item in answer
        )
        if "QRESYNC" in enabled:
            enabled |= {"CONDSTORE"}  # RFC 7162 3.2.3: enabling QRESYNC enables CONDSTORE
    _ENABLED[client] = enabled
    return enabled


def extension_enabled(client: IMAPClient, name: str) -> bool:
    """Whether ENABLE switched on ``name`` (QRESYNC, CONDSTORE) on this connection."""
    return name in _ENABLED.get(client, frozenset())


def uid_ranges(text: str, *, below: int) -> list[tuple[int, int]] | None:
    """A UID set such as ``1:3,7,9:8`` as sorted, merged (low, high) ranges, cut to UIDs under ``below``.

    Ranges stay ranges: a server may name four billion UIDs in a few bytes. None when unparsable.
    """
    ranges = []
    for part in text.split(","):
        match = _UID_RANGE.match(part.strip())
        if match is None:
            return None
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        low, high = min(low, high), min(max(low, high), below - 1, MAX_UID)
        if low >= 1 and low <= high:
            ranges.append((low, high))
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def uid_set(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` → ``"1:3,7,9:10"``: keeps commands short for large folders."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start: int | None = None
    prev = 0
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
    return fetched_by_uid(data, client.normalise_times)


def fetched_by_uid(data: list[Any], normalise_times: bool) -> dict[int, dict[bytes, Any]]:
    """Untagged FETCH responses keyed by UID; responses without a UID are left out.

    imapclient keys those by sequence number instead, so an unsolicited ``* 5 FETCH (FLAGS ...)``
    (another client changed message 5) would pass for UID 5.
    """
    if not data or data == [None]:
        return {}
    by_uid: dict[int, dict[bytes, Any]] = {}
    for item in parse_fetch_response(data, normalise_times, False).values():
        uid = item.get(b"UID")
        if isinstance(uid, int):
            by_uid.setdefault(uid, {}).update(item)
    return by_uid


def uid_search(client: IMAPClient, criteria: list[Any] | str = "ALL") -> list[int]:
    """``UID SEARCH`` returning plain ints."""
    return [int(uid) for uid in client.search(criteria)]


def flags_text(flags: tuple[bytes | str, ...]) -> str:
    """IMAP flags as one space-separated string (``\\Recent`` left out: it is per-session)."""
    names = (flag.decode() if isinstance(flag, bytes) else str(flag) for flag in flags)
    return " ".join(sorted(name for name in names if name.lower() != "\\recent"))
