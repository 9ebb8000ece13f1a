"""The connections of one watched server, each a thread blocked in a read until the server speaks.

``ServerWatch`` is the main connection: it logs in, lists the folders, chooses the plan
(imap2api.watch.plan) and listens by NOTIFY, by IDLE on INBOX (polling the rest with STATUS
between IDLEs) or by STATUS polling alone; ``FolderWatch`` is one more IDLE connection on one
folder. Whatever they hear becomes a notice to the process's Pusher.

- IDLE is re-issued every ``IMAP2API_WATCH_IDLE_SECONDS`` (RFC 2177: before the 30-minute
  inactivity timeout), which also shows a silently dead connection.
- A dropped connection (BYE, EOF, timeout, a server restart) is reopened after a backoff with
  jitter: 1 s doubling to ``IMAP2API_WATCH_RECONNECT_MAX_SECONDS``, each delay 50–100 % of its
  step. Every (re)connection of the main watch starts with a push sync of every folder, which
  catches up on whatever happened while nobody listened.
- A changed folder list (NOTIFY's LIST, or a poll's LIST) re-plans the watch.
- ``stop`` shuts the sockets down, which ends a blocked read at once.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_response

from imap2api.config import settings
from imap2api.db import session_scope
from imap2api.errors import SyncFailed
from imap2api.models import ImapServer
from imap2api.sync.connection import open_connection
from imap2api.sync.engine import account_of
from imap2api.sync.folders import RemoteFolder, list_remote_folders, select_folders
from imap2api.sync.imap import discard_untagged, notify_set, pop_untagged
from imap2api.watch.notices import Notice, canonical, read_responses, status_key
from imap2api.watch.plan import WatchMode, WatchPlan, plan_watch
from imap2api.watch.pusher import Pusher

log = logging.getLogger("imap2api.watch")

FIRST_RETRY_SECONDS = 1.0
FAILED_RESTART_SECONDS = 30.0  # after an unexpected error (a bug), not a dropped connection
STABLE_SECONDS = 30.0  # a connection that lived this long starts the backoff afresh when it drops
# What a lost or refused connection raises, from imaplib, imapclient, ssl or the socket.
DROPPED = (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort, IMAPClientError, ssl.SSLError, SyncFailed)


class Dropped(Exception):
    """The connection ended (BYE, EOF) or went quiet."""


class Replan(Exception):
    """The folder list changed: the watch starts over with a new plan."""


def leftover_responses(client: IMAPClient) -> list[tuple[Any, ...]]:
    """The unsolicited responses imaplib kept since the last command, shaped as IDLE's (notices.py)."""
    found: list[tuple[Any, ...]] = []
    for name in ("EXISTS", "EXPUNGE", "FETCH", "VANISHED"):
        if pop_untagged(client, name):
            found.append((0, name.encode()))
    for data in pop_untagged(client, "STATUS"):
        with contextlib.suppress(Exception):  # an answer imapclient cannot parse names no folder
            found.append((b"STATUS", parse_response([data])[0], ()))
    if pop_untagged(client, "LIST"):
        found.append((b"LIST",))
    return found


def backoff(attempt: int, *, cap: float) -> float:
    """Seconds before reconnection ``attempt`` (0, 1, ...): doubling from 1 s to ``cap``, 50–100 % of it."""
    step = min(cap, FIRST_RETRY_SECONDS * 2 ** min(attempt, 30))
    return float(step * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret


def _reason(exc: BaseException) -> str:
    """A short reason for watch_status."""
    if isinstance(exc, SyncFailed):
        return exc.message
    return f"{type(exc).__name__}: {exc}"[:200]


class _Listener(threading.Thread):
    """A thread that keeps one connection to a server open and listens on it until stopped."""

    def __init__(self, server_id: int, pusher: Pusher, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.server_id = server_id
        self.pusher = pusher
        self.stopping = threading.Event()
        self._client: IMAPClient | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        """Connect, listen, and reconnect with backoff until stopped."""
        attempt = 0
        while not self.stopping.is_set():
            opened = time.monotonic()
            try:
                self._session()
                attempt = 0
            except Replan:
                attempt = 0
                continue
            except DROPPED + (Dropped,) as exc:
                if self.stopping.is_set():
                    break
                if time.monotonic() - opened >= STABLE_SECONDS:
                    attempt = 0
                delay = backoff(attempt, cap=settings.watch_reconnect_max_seconds)
                attempt += 1
                self.report(f"reconnecting in {delay:.0f} s: {_reason(exc)}")
                log.info(
                    "watch of server %s dropped (%s); reconnecting in %.1f s", self.server_id, exc, delay
                )
                self.stopping.wait(delay)
            except Exception:  # noqa: BLE001 - a watch must never die of one server's oddity
                log.exception("watch of server %s crashed; restarting it", self.server_id)
                self.stopping.wait(FAILED_RESTART_SECONDS)
            finally:
                self._close()

    def _session(self) -> None:
        """One connection's life: open, listen until something ends it (raises what ended it)."""
        raise NotImplementedError

    def report(self, status: str) -> None:
        """Record how the watch goes (only the main watch writes it; see ServerWatch)."""

    def connect(self) -> tuple[ImapServer, IMAPClient]:
        """The server's row and a logged-in connection to it."""
        with session_scope() as session:
            server = session.get(ImapServer, self.server_id)
        if server is None:
            self.stopping.set()
            raise Dropped("the server was deleted")
        client = open_connection(account_of(server))
        with self._lock:
            self._client = client
        if self.stopping.is_set():
            raise Dropped("stopped")
        return server, client

    def listen(
        self,
        client: IMAPClient,
        *,
        selected: str | None,
        on_notice: Callable[[Notice], None],
        every: float | None = None,
        on_every: Callable[[], None] | None = None,
    ) -> None:
        """IDLE until stopped (renewed every WATCH_IDLE_SECONDS), running ``on_every`` every ``every`` s."""
        renew = settings.watch_idle_seconds
        next_every = time.monotonic() + every if every else None
        discard_untagged(client)  # what SELECT and NOTIFY SET said: the catch-up push sync covers it
        while not self.stopping.is_set():
            client.idle()
            # A response that came just before "+ idling" was read by idle() and kept aside by imaplib.
            early = read_responses(leftover_responses(client), selected=selected)
            if early:
                on_notice(early)
            ends = time.monotonic() + renew
            if next_every is not None:
                ends = min(ends, next_every)
            while not self.stopping.is_set():
                left = ends - time.monotonic()
                if left <= 0:
                    break
                asked = time.monotonic()
                responses = client.idle_check(timeout=left)
                notice = read_responses(responses, selected=selected)
                if notice.bye:
                    raise Dropped("the server said BYE")
                if notice:
                    on_notice(notice)
                elif time.monotonic() - asked < left - 0.05:
                    break  # woken with nothing to read: EOF, or a partial line; DONE tells which
            if self.stopping.is_set():
                return
            _, responses = client.idle_done()  # raises if the connection is gone
            notice = read_responses(responses, selected=selected)
            if notice:
                on_notice(notice)
            if next_every is not None and on_every is not None and time.monotonic() >= next_every:
                on_every()
                next_every = time.monotonic() + (every or 0)
            # What the server said between two IDLEs (during DONE, STATUS...) waits in imaplib's
            # untagged responses, where no IDLE would read it.
            notice = read_responses(leftover_responses(client), selected=selected)
            if notice:
                on_notice(notice)

    def stop(self) -> None:
        """Stop listening: the blocked read ends at once, the thread exits soon after."""
        self.stopping.set()
        with self._lock:
            client = self._client
        if client is not None:
            with contextlib.suppress(OSError, AttributeError):
                client.socket().shutdown(socket.SHUT_RDWR)

    def _close(self) -> None:
        """Drop the connection (no LOGOUT: it may be dead, and a watch ending needs no politeness)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


class FolderWatch(_Listener):
    """One more IDLE connection, on one folder of a server without NOTIFY."""

    def __init__(self, server_id: int, pusher: Pusher, folder: str) -> None:
        super().__init__(server_id, pusher, name=f"imap2api-watch-{server_id}-{folder}"[:60])
        self.folder = folder

    def _session(self) -> None:
        _, client = self.connect()
        client.select_folder(self.folder, readonly=True)
        self.pusher.notice(self.server_id, {self.folder})  # what came while this connection was down
        self.listen(client, selected=self.folder, on_notice=self._heard)

    def _heard(self, notice: Notice) -> None:
        log.debug("server %s: IDLE on %s heard %s", self.server_id, self.folder, sorted(notice.folders))
        self.pusher.notice(self.server_id, notice.folders)


class ServerWatch(_Listener):
    """The main connection of a watched server, with the FolderWatch threads its plan asks for."""

    def __init__(self, server_id: int, pusher: Pusher, *, on_status: Callable[[int, str], None]) -> None:
        super().__init__(server_id, pusher, name=f"imap2api-watch-{server_id}")
        self._on_status = on_status
        self._status = ""
        self._children: list[FolderWatch] = []
        self._folders: list[str] = []
        self.plan: WatchPlan | None = None
        self._heard_anything = False  # since this connection opened

    def report(self, status: str) -> None:
        """Store the status when it changed."""
        if status != self._status:
            self._status = status
            self._on_status(self.server_id, status)

    def _session(self) -> None:
        server, client = self.connect()
        remote = list_remote_folders(client)
        chosen = select_folders(
            remote, folders_to_sync=server.folders_to_sync, exclude_trash=server.exclude_trash
        )
        self._folders = [folder.name for folder in chosen]
        self._heard_anything = False
        capabilities = [_text(capability) for capability in client.capabilities()]
        plan = plan_watch(
            capabilities,
            chosen,
            idle_folders=settings.watch_idle_folders,
            max_connections=settings.watch_max_connections,
            idle_with_notify=settings.watch_idle_with_notify,
        )
        inbox = next((name for name in self._folders if name.upper() == "INBOX"), None)
        if inbox in plan.extra_idle:
            inbox = None  # it has an IDLE connection of its own (plan.py)
        if plan.mode == WatchMode.NOTIFY and inbox is not None:
            # One connection only: INBOX stays selected on it, its changes told as EXISTS and FETCH.
            client.select_folder(inbox, readonly=True)
        if plan.mode == WatchMode.NOTIFY and not notify_set(client, selected=inbox is not None):
            # Offered, then refused (a proxy, a policy): watch as a server without it.
            plan = plan_watch(
                [c for c in capabilities if c != "NOTIFY"],
                chosen,
                idle_folders=settings.watch_idle_folders,
                max_connections=settings.watch_max_connections,
            )
        self.plan = plan
        self._start_children(plan)
        self.report(plan.describe(settings.watch_poll_seconds))
        # Whatever happened while nobody listened (first start, reconnection) is caught up now.
        self.pusher.notice(self.server_id, None)
        try:
            if plan.mode == WatchMode.NOTIFY:
                self.listen(
                    client,
                    selected=inbox,
                    on_notice=self._heard,
                    every=settings.watch_notify_renew_seconds,
                    on_every=self._renew,
                )
            elif plan.mode == WatchMode.IDLE:
                assert plan.idle_folder is not None
                client.select_folder(plan.idle_folder, readonly=True)
                poller = _Poller(client, plan.polled, remote)
                self.listen(
                    client,
                    selected=plan.idle_folder,
                    on_notice=self._heard,
                    every=settings.watch_poll_seconds,
                    on_every=lambda: self._poll(poller),
                )
            else:
                poller = _Poller(client, plan.polled, remote)
                while not self.stopping.wait(settings.watch_poll_seconds):
                    self._poll(poller)
        finally:
            self._stop_children()

    def _renew(self) -> None:
        """Start the NOTIFY connection afresh (a catch-up push sync comes with it).

        Dovecot 2.3 stops announcing folders other than INBOX promptly once its mailbox list index
        log rotates (every few hundred changes): until the session ends, only its 30-second fallback
        check speaks. A NOTIFY SET on the same connection mends it but loses the change that comes
        right after; a new connection has neither fault (docs/sync.md, Push). Only a connection that
        heard something is renewed: the log grows with changes, and a quiet account costs no logins.
        """
        if self._heard_anything:
            raise Replan()

    def _heard(self, notice: Notice) -> None:
        """Hand a notice to the pusher, or re-plan when the folder list changed."""
        log.debug(
            "server %s: heard %s%s",
            self.server_id,
            sorted(notice.folders),
            " (folder list)" if notice.folder_list else "",
        )
        self._heard_anything = True
        if notice.folder_list:
            self.pusher.notice(self.server_id, None)
            raise Replan()
        folders = {name for name in (canonical(n, self._folders) for n in notice.folders) if name}
        if folders:
            self.pusher.notice(self.server_id, folders)

    def _poll(self, poller: _Poller) -> None:
        """One round of STATUS polling."""
        changed, folder_list = poller.poll()
        if folder_list:
            self.pusher.notice(self.server_id, None)
            raise Replan()
        if changed:
            self.pusher.notice(self.server_id, changed)

    def _start_children(self, plan: WatchPlan) -> None:
        """One FolderWatch per extra IDLE folder of the plan."""
        self._stop_children()
        for folder in plan.extra_idle:
            child = FolderWatch(self.server_id, self.pusher, folder)
            child.start()
            self._children.append(child)

    def _stop_children(self) -> None:
        """Stop the FolderWatch threads."""
        for child in self._children:
            child.stop()
        self._children = []

    def stop(self) -> None:
        """Stop this watch and its children."""
        super().stop()
        self._stop_children()


class _Poller:
    """STATUS polling of some folders: which changed since the last round, and whether the folder list did."""

    def __init__(self, client: IMAPClient, folders: tuple[str, ...], remote: list[RemoteFolder]) -> None:
        self.client = client
        self.folders = folders
        self.listed = sorted(folder.name for folder in remote)
        items = ["UIDVALIDITY", "UIDNEXT", "MESSAGES", "UNSEEN"]
        if client.has_capability("CONDSTORE"):
            items.append("HIGHESTMODSEQ")  # flag changes too
        self.items = items
        self.last: dict[str, tuple[Any, ...]] = {}
        self._round()  # the baseline: the catch-up push sync covers what came before

    def _round(self) -> set[str]:
        """STATUS every folder; the names whose answer changed."""
        changed = set()
        for name in self.folders:
            try:
                key = status_key(self.client.folder_status(name, self.items))
            except imaplib.IMAP4.error:
                key = ()  # gone: the LIST below notices
            if self.last.get(name, key) != key:
                changed.add(name)
            self.last[name] = key
        return changed

    def poll(self) -> tuple[set[str], bool]:
        """(changed folders, whether the folder list changed) since the last poll."""
        changed = self._round()
        listed = sorted(folder.name for folder in list_remote_folders(self.client))
        folder_list = listed != self.listed
        self.listed = listed
        return changed, folder_list


def _text(value: Any) -> str:
    """A capability as upper-case text."""
    return (value.decode() if isinstance(value, bytes) else str(value)).upper()
