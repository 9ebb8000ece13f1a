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
from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import _literal
from imapclient.response_parser import parse_fetch_response
from imapclient.util import to_unicode

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

    imapclient's own ``fetch`` cannot be used: it filters its answer by ``int()`` of each id
    asked for (a ValueError for ``1:*`` or ``1:3,7``), so only takes UID lists, which grow too
    long for big folders; and it keys UID-less responses by sequence number (see
    ``fetched_by_uid``). This sends the same command through imaplib's public ``uid``.
    """
    if not uids:
        return {}
    args = [uids, "(" + " ".join(items) + ")"]
    if modifiers:
        args.append("(" + " ".join(modifiers) + ")")
    typ, data = imaplib_connection(client).uid("FETCH", *args)
    if typ != "OK":  # NO (BAD raises): as IMAPClient.fetch fails
        raise IMAPClientError(f"fetch failed: {to_unicode(data[0])}")
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


# ------------------------------------------------------------------------------------------------
# imapclient's internals, used here and nowhere else
# ------------------------------------------------------------------------------------------------
# imapclient (4.1) wraps each command it knows in a method, and has no public way to send one it
# does not wrap, to pass parameters it does not know, or to reach the imaplib connection under it.
# The sync needs three such things, so they are done here, through the fewest internals;
# tests/test_sync_imap_internals.py runs each against a scripted server, so an imapclient that
# changes them fails there rather than in a sync:
#
# - the imaplib connection itself (``IMAPClient._imap``), for imaplib's public ``uid`` (UID FETCH
#   over a UID set: ``uid_fetch``), ``select`` (EXAMINE with QRESYNC) and ``untagged_responses``;
# - EXAMINE with a QRESYNC parameter: ``select_folder`` sends none. ``_normalise_folder`` quotes
#   (and UTF-7 encodes) the name as ``select_folder`` does, ``_process_select_response`` reads the
#   answer as it does, so both paths give the same dict;
# - NOTIFY, which imapclient does not know: ``_raw_command`` (``notify_set``);
# - LOGIN with both arguments as IMAP strings or literals (``login`` sends the username bare):
#   ``_raw_command`` is what imapclient itself sends literals with, and it sends as one any 8-bit
#   argument and any argument marked with its ``_literal`` class (``literal``).


def imaplib_connection(client: IMAPClient) -> imaplib.IMAP4:
    """The imaplib connection under ``client`` (imapclient keeps it in ``_imap``, with no accessor)."""
    connection: imaplib.IMAP4 = client._imap  # noqa: SLF001 - see above
    return connection


def examine_qresync(
    client: IMAPClient, name: str, *, uidvalidity: int, highestmodseq: int
) -> dict[bytes, Any] | None:
    """``EXAMINE name (QRESYNC (uidvalidity highestmodseq))`` (RFC 7162 3.2.5); None if refused.

    Returns the EXAMINE answer as ``select_folder`` returns it. The VANISHED and FETCH responses
    it brought stay for ``pop_untagged``. imaplib's ``select`` flushes earlier untagged responses
    and sets the connection's state, as for a plain EXAMINE.
    """
    imap = imaplib_connection(client)
    mailbox = client._normalise_folder(name)  # noqa: SLF001 - see above
    if isinstance(mailbox, str):  # bytes unless folder_encode is off
        mailbox = mailbox.encode()
    typ, _ = imap.select(mailbox + f" (QRESYNC ({uidvalidity} {highestmodseq}))".encode(), readonly=True)
    if typ != "OK":
        return None
    info: dict[bytes, Any] = client._process_select_response(imap.untagged_responses)  # noqa: SLF001
    return info


def notify_set(client: IMAPClient, *, selected: bool = False) -> bool:
    """``NOTIFY SET`` (RFC 5465) for every personal folder: new mail, expunges, flag changes and changes
    of the folder list, as STATUS and LIST responses (``selected``: the selected folder's as EXISTS,
    EXPUNGE and FETCH); False if the server refuses it.

    imapclient has no NOTIFY; ``_raw_command`` sends it as imapclient sends its own commands.
    """
    events = b"(personal (MessageNew MessageExpunge FlagChange MailboxName))"
    if selected:
        # The selected folder's changes as EXISTS, EXPUNGE and FETCH, as IDLE gives them.
        events = b"(selected (MessageNew MessageExpunge FlagChange)) " + events
    try:
        typ, _ = client._raw_command(b"NOTIFY", [b"SET", events], uid=False)  # noqa: SLF001 - see above
    except imaplib.IMAP4.error:
        return False
    return bool(typ == "OK")


def discard_untagged(client: IMAPClient) -> None:
    """Forget the untagged responses earlier commands left (FETCH after a STORE, EXPUNGE...)."""
    imaplib_connection(client).untagged_responses.clear()


def pop_untagged(client: IMAPClient, name: str) -> list[Any]:
    """Take the untagged ``name`` responses (VANISHED, FETCH...) the last command left, raw."""
    found: list[Any] = imaplib_connection(client).untagged_responses.pop(name, [])
    return found


def literal(raw: bytes) -> bytes:
    """``raw`` marked to go as an IMAP literal (``{n}`` then the bytes) through ``login_with_literals``."""
    marked: bytes = _literal(raw)
    return marked


def login_with_literals(client: IMAPClient, arguments: list[bytes]) -> tuple[str, list[Any]]:
    """``LOGIN`` with ready-made arguments (quoted strings or 8-bit literals); (typ, data) as imaplib gives.

    On OK, does what imaplib's own ``login`` would: commands of the authenticated state are now
    allowed, and the capabilities imapclient cached before login are dropped (they change).
    """
    typ, data = client._raw_command(b"LOGIN", arguments, uid=False)  # noqa: SLF001 - see above
    if typ == "OK":
        imaplib_connection(client).state = "AUTH"
        client._cached_capabilities = None  # noqa: SLF001 - see above
    return typ, data
