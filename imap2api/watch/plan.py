"""How a server is watched, decided from its capabilities and folders (pure, no I/O).

- **NOTIFY** (RFC 5465) where offered: one connection hears of every folder (``STATUS`` and
  ``LIST`` notifications), IDLE keeping it open; INBOX gets an IDLE connection of its own beside it
  (as soon as ``IMAP2API_WATCH_MAX_CONNECTIONS`` allows two), and with
  ``IMAP2API_WATCH_IDLE_WITH_NOTIFY`` so do the folders that matter (see below). Dovecot 2.3's
  NOTIFY needs them: once its mailbox list index log rotates it tells of folders every 30 s only,
  and even the folder it has selected misses a change now and then (2 INBOX messages of 200,
  bench/push.py); a plain IDLE on the folder does neither.
- Else **IDLE** (RFC 2177) on INBOX, plus one more IDLE connection each for the folders that
  matter most (``IMAP2API_WATCH_IDLE_FOLDERS``: special-use flags or names, in order), up to
  ``IMAP2API_WATCH_MAX_CONNECTIONS`` per server; the folders left are polled with ``STATUS``
  every ``IMAP2API_WATCH_POLL_SECONDS``, between two IDLEs of the INBOX connection.
- Else (no IDLE) every folder is polled with ``STATUS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from imap2api.sync.folders import RemoteFolder


class WatchMode(StrEnum):
    """How the main connection of a watch listens."""

    NOTIFY = "NOTIFY"
    IDLE = "IDLE"
    POLL = "STATUS polling"


@dataclass(frozen=True)
class WatchPlan:
    """The main connection's mode and folder, the folders with an IDLE connection each, the polled ones."""

    mode: WatchMode
    idle_folder: str | None  # the main connection's folder (IDLE mode: INBOX)
    extra_idle: tuple[str, ...]
    polled: tuple[str, ...]

    def describe(self, poll_seconds: float) -> str:
        """One line for ``watch_status``: what is watched and how."""
        parts = [self.mode.value if self.mode != WatchMode.IDLE else f"IDLE on {self.idle_folder}"]
        if self.extra_idle:
            parts.append("IDLE on " + ", ".join(self.extra_idle))
        if self.polled:
            count = len(self.polled)
            parts.append(f"STATUS every {poll_seconds:g} s on {count} folder{'' if count == 1 else 's'}")
        return "; ".join(parts)


def _inbox(folders: Sequence[RemoteFolder]) -> str | None:
    """The INBOX among the folders (its name is case-insensitive), if selected."""
    return next((folder.name for folder in folders if folder.name.upper() == "INBOX"), None)


def _ranked(folders: Sequence[RemoteFolder], wanted: Iterable[str]) -> list[str]:
    """Folder names matching ``wanted`` (a special-use flag such as ``\\Sent``, or a name), in its order."""
    names = []
    for want in wanted:
        for folder in folders:
            matches = (
                folder.special_use.lower() == want.lower() if want.startswith("\\") else folder.name == want
            )
            if matches and folder.name not in names:
                names.append(folder.name)
    return names


def plan_watch(
    capabilities: Iterable[str],
    folders: Sequence[RemoteFolder],
    *,
    idle_folders: Sequence[str],
    max_connections: int,
    idle_with_notify: bool = False,
) -> WatchPlan:
    """The plan for a server offering ``capabilities`` (upper case) whose selected folders are ``folders``."""
    offered = {capability.upper() for capability in capabilities}
    names = [folder.name for folder in folders]
    inbox = _inbox(folders)
    if "NOTIFY" in offered and "IDLE" in offered:
        # INBOX, and the folders that matter where asked, get an IDLE of their own beside NOTIFY.
        own = [inbox] if inbox is not None and max_connections >= 2 else []
        budget = max(0, max_connections - 1 - len(own)) if idle_with_notify else 0
        extra = own + [name for name in _ranked(folders, idle_folders) if name != inbox][:budget]
        return WatchPlan(WatchMode.NOTIFY, None, tuple(extra), ())
    if "IDLE" not in offered or inbox is None:
        return WatchPlan(WatchMode.POLL, None, (), tuple(names))
    extra = [name for name in _ranked(folders, idle_folders) if name != inbox][: max(0, max_connections - 1)]
    polled = tuple(name for name in names if name != inbox and name not in extra)
    return WatchPlan(WatchMode.IDLE, inbox, tuple(extra), polled)
