"""The watch manager of a process: which servers it watches (leases in the database), started and stopped.

Every ``IMAP2API_WATCH_LEASE_SECONDS / 3`` the manager renews its leases, gives back servers
beyond its fair share (the watchable servers divided among the live watcher processes, so a
process that joins gets some), claims free ones up to that share (and ``WATCH_MAX_SERVERS``),
and starts or stops a ServerWatch for each change; a server whose connection settings or folder
choice changed is watched afresh. Stopping gives every lease back, so the others take over at
their next tick; a process that dies stops renewing, and its servers move after the lease time.

``imap2api serve`` (embedded) and every ``imap2api worker`` process run one manager each
(``start_watching``), unless ``IMAP2API_WATCH_ENABLED`` is false.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from typing import Any

from sqlmodel import col, select

from imap2api.config import settings
from imap2api.crud import watches as crud_watches
from imap2api.db import session_scope
from imap2api.models import ImapServer
from imap2api.watch.listener import ServerWatch
from imap2api.watch.pusher import Pusher

log = logging.getLogger("imap2api.watch")

STOP_JOIN_SECONDS = 2.0


def _settings_key(server: ImapServer) -> tuple[Any, ...]:
    """What a watch depends on: a change means reconnecting."""
    return (
        server.host,
        server.port,
        server.username,
        server.password_encrypted,
        server.tls_mode,
        server.tls_verify,
        server.folders_to_sync,
        server.exclude_trash,
    )


class WatchManager(threading.Thread):
    """Holds this process's watch leases and a ServerWatch per server it holds."""

    def __init__(self, *, tick: float | None = None) -> None:
        super().__init__(name="imap2api-watch-manager", daemon=True)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:100]
        self.tick = tick if tick is not None else max(1.0, settings.watch_lease_seconds / 3)
        self.pusher = Pusher(
            threads=settings.watch_sync_threads, debounce_seconds=settings.watch_debounce_ms / 1000
        )
        self.watches: dict[int, ServerWatch] = {}
        self._keys: dict[int, tuple[Any, ...]] = {}
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self.ticked = threading.Event()  # set after each tick (tests wait on it)

    def run(self) -> None:
        """Tick until stopped."""
        while not self._stop_event.is_set():
            self._wake.clear()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - e.g. the database restarting: the next tick tries again
                log.exception("watch manager tick failed")
            self.ticked.set()
            self._wake.wait(self.tick)

    def wake(self) -> None:
        """Tick now rather than at the next tick (a server became watchable)."""
        self._wake.set()

    def step(self) -> None:
        """One tick: renew, balance, claim; then start and stop watches to match."""
        seconds = settings.watch_lease_seconds
        with session_scope() as session:
            crud_watches.heartbeat(session, holder=self.holder, seconds=seconds)
            held = crud_watches.renew(session, holder=self.holder, seconds=seconds)
            share = min(crud_watches.fair_share(session), settings.watch_max_servers)
            if len(held) > share + 1:
                # Another process joined: leave it the newest servers, it claims them at its next tick.
                excess = sorted(held)[share:]
                crud_watches.release(session, holder=self.holder, server_ids=excess)
                held = [server_id for server_id in held if server_id not in excess]
            held += crud_watches.claim(session, holder=self.holder, limit=share - len(held), seconds=seconds)
            rows = session.exec(select(ImapServer).where(col(ImapServer.id).in_(held))).all()
            keys = {row.id or 0: _settings_key(row) for row in rows}
        for server_id in [sid for sid in self.watches if sid not in keys]:
            self._unwatch(server_id)
        for server_id, key in keys.items():
            if server_id in self.watches and self._keys.get(server_id) != key:
                log.info("server %s changed its settings; watching it afresh", server_id)
                self._unwatch(server_id)
            if server_id not in self.watches:
                self._watch(server_id, key)

    def _watch(self, server_id: int, key: tuple[Any, ...]) -> None:
        """Start watching a server."""
        watch = ServerWatch(server_id, self.pusher, on_status=self._store_status)
        self.watches[server_id] = watch
        self._keys[server_id] = key
        watch.start()

    def _unwatch(self, server_id: int) -> None:
        """Stop watching a server."""
        watch = self.watches.pop(server_id)
        self._keys.pop(server_id, None)
        self.pusher.forget(server_id)
        watch.stop()

    def _store_status(self, server_id: int, status: str) -> None:
        """Write a watch's status on its server (as long as this process holds the lease)."""
        try:
            with session_scope() as session:
                crud_watches.set_status(session, server_id=server_id, holder=self.holder, status=status)
        except Exception:  # noqa: BLE001 - a status is a courtesy; the watch goes on
            log.warning("could not store the watch status of server %s", server_id, exc_info=True)

    def stop(self) -> None:
        """Stop every watch and give the leases back."""
        self._stop_event.set()
        self._wake.set()
        watches = list(self.watches.values())
        for server_id in list(self.watches):
            self._unwatch(server_id)
        self.pusher.stop()
        for watch in watches:
            watch.join(STOP_JOIN_SECONDS / max(1, len(watches)))
        try:
            with session_scope() as session:
                crud_watches.leave(session, holder=self.holder)
        except Exception:  # noqa: BLE001 - the leases lapse on their own
            log.warning("could not give the watch leases back", exc_info=True)


_manager: WatchManager | None = None


def start_watching() -> WatchManager | None:
    """Start this process's watch manager if watching is enabled (idempotent)."""
    global _manager
    if _manager is None and settings.watch_enabled and settings.watch_max_servers > 0:
        _manager = WatchManager()
        _manager.start()
    return _manager


def wake_watching() -> None:
    """Have this process's watch manager tick now, if it runs (after a server's first full sync)."""
    if _manager is not None:
        _manager.wake()


def stop_watching() -> None:
    """Stop this process's watch manager, if it runs."""
    global _manager
    if _manager is not None:
        _manager.stop()
        _manager = None
