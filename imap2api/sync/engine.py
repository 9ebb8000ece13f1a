"""One sync run of one server, from lease to sync.completed; callable from an actor, the CLI or a test."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from imapclient import IMAPClient
from sqlmodel import Session

from imap2api import pubsub
from imap2api.config import settings
from imap2api.crud import maintenance as crud_maintenance
from imap2api.crud import mirror as crud_mirror
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.enums import AuthType, EventType, SyncStatus
from imap2api.errors import NotFound, SyncFailed
from imap2api.logs import log_context
from imap2api.models import Folder, ImapServer, SyncRun, utcnow
from imap2api.oauth2 import tokens
from imap2api.security import DecryptionError, decrypt_secret
from imap2api.sync.connection import ImapAccount, connected
from imap2api.sync.folder import sync_folders
from imap2api.sync.folders import (
    RemoteFolder,
    list_folders_with_status,
    missing_folders,
    near_misses,
    select_folders,
)
from imap2api.sync.lease import LeaseLost, ServerGone, give_back_lease, keep_lease
from imap2api.sync.progress import RunState
from imap2api.sync.run_timeout import RunTimeout

log = logging.getLogger("imap2api.sync")


class LeaseBusy(Exception):
    """Raised when another worker holds the server's sync lease."""


def holder_name() -> str:
    """Who holds a lease: host, process and thread, so a stale one can be told apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def account_of(server: ImapServer) -> ImapAccount:
    """Login details of a server: its password decrypted, or (oauth2) its source of access tokens."""
    if server.auth_type == AuthType.OAUTH2:
        return ImapAccount(
            server.host,
            server.port,
            server.username,
            "",
            tls_mode=server.tls_mode,
            tls_verify=server.tls_verify,
            bearer=tokens.bearer(server.id or 0),
            tls_ca_cert=server.tls_ca_cert,
        )
    if not server.password_encrypted:
        raise SyncFailed(
            "no IMAP password is stored (the server was set up for OAuth2): enter the password",
            code="IMAP_CREDENTIALS_INVALID",
        )
    try:
        password = decrypt_secret(server.password_encrypted)
    except DecryptionError as exc:
        raise SyncFailed(str(exc), code="SECRET_KEY_CHANGED") from exc
    return ImapAccount(
        server.host,
        server.port,
        server.username,
        password,
        tls_mode=server.tls_mode,
        tls_verify=server.tls_verify,
        tls_ca_cert=server.tls_ca_cert,
    )


def run_sync(run_id: int, *, on_progress: Callable[[int, int], None] | None = None) -> SyncRun:
    """Execute a queued sync run; returns the finished run (status success or error).

    Raises LeaseBusy when another worker is syncing the same server: the caller retries later.
    Raises ServerGone when the server was deleted (before or during the run): nothing is stored.
    A worker whose lease lapsed and was taken over stops and returns the run as it is.
    """
    with log_context(sync_run=run_id):
        return _run(run_id, on_progress)


def _run(run_id: int, on_progress: Callable[[int, int], None] | None) -> SyncRun:
    """``run_sync`` inside its log context."""
    holder = holder_name()
    with session_scope() as session:
        try:
            run = crud_runs.get_run(session, run_id=run_id)
            if run.status not in crud_runs.ACTIVE:
                return run  # already done: actors may be delivered twice
            server = crud_servers.get_server(session, owner_id=None, server_id=run.imap_server_id)
        except NotFound:
            # Runs go with their server (ON DELETE CASCADE): this one was deleted with it.
            raise ServerGone(f"the server of sync run {run_id} was deleted") from None
        if not crud_runs.acquire_lease(
            session, server_id=server.id or 0, holder=holder, seconds=settings.sync_lease_seconds
        ):
            if run.status == SyncStatus.RUNNING:
                # This very run is under way elsewhere (a promoted run's second message, or a message
                # delivered twice): nothing to wait for, so no LeaseBusy retry every few seconds.
                return run
            raise LeaseBusy(f"server {server.id} is being synced by another worker")
        crud_runs.update_run(
            session, run_id=run_id, status=SyncStatus.RUNNING, started_at=utcnow(), error="", error_code=""
        )
    state = RunState(
        run_id=run_id,
        server_id=server.id or 0,
        owner_id=server.owner_id,
        holder=holder,
        limit_type=server.sync_limit_type,
        limit_value=server.sync_limit_value,
        on_progress=on_progress,
        initial=server.last_sync is None,
    )
    try:
        with RunTimeout(settings.sync_run_timeout_seconds) as bound:
            mirror_server(server, state, bound)
    except LeaseLost as exc:
        log.warning("sync run %s of server %s stopped: %s", run_id, server.id, exc)
        return _current(run_id)
    except ServerGone:
        raise
    except SyncFailed as exc:
        log.warning("sync run %s of server %s failed: %s", run_id, server.id, exc.message)
        return _finish(run_id, state, status=SyncStatus.ERROR, error=exc.message, code=exc.code)
    except Exception as exc:  # noqa: BLE001 - a sync must end in a stored outcome, never a crash
        if _deleted(state.server_id):
            # The delete cascaded under the sync: its foreign-key errors are that, not a crash.
            raise ServerGone(f"server {state.server_id} was deleted during its sync") from None
        log.exception("sync run %s of server %s crashed", run_id, server.id)
        return _finish(
            run_id,
            state,
            status=SyncStatus.ERROR,
            error=f"internal error: {type(exc).__name__}",
            code="SYNC_CRASHED",
        )
    return _finish(run_id, state, status=SyncStatus.SUCCESS)


def mirror_server(
    server: ImapServer,
    state: RunState,
    bound: RunTimeout,
    only: frozenset[str] | None = None,
    *,
    client: IMAPClient | None = None,
) -> None:
    """Walk the server's folders and mirror each one, within the run's time bound.

    ``only`` (a push sync, a write) names the folders to mirror; the other selected folders are
    examined too if one of these lost a message, so that a move's destination is seen in the same
    sync (and the message keeps its id). Without ``only``, folders gone from the server leave the
    mirror. ``client``: a connection already open (and watched by ``bound``), else one is opened.
    """
    if client is not None:
        _mirror_over(client, server, state, only)
        return
    timeout = bound.imap_timeout(settings.imap_timeout_seconds)
    with connected(account_of(server), timeout=timeout) as opened, bound.watching(opened):
        _mirror_over(opened, server, state, only)


def _mirror_over(
    client: IMAPClient, server: ImapServer, state: RunState, only: frozenset[str] | None
) -> None:
    """``mirror_server`` over an open connection."""
    # With LIST-STATUS this one command also tells which folders changed: the others are not examined.
    remote, listed = list_folders_with_status(client)
    chosen = select_folders(
        remote, folders_to_sync=server.folders_to_sync, exclude_trash=server.exclude_trash
    )
    if only is not None:
        sync_folders(
            client,
            state,
            [folder for folder in chosen if folder.name in only],
            widen=[folder for folder in chosen if folder.name not in only],
            listed=listed,
        )
        return
    # Only full runs say so: a push sync or a write keeps no run row to show it on.
    state.missing_folders = missing_folders(remote, folders_to_sync=server.folders_to_sync)
    if state.missing_folders:
        _warn_missing(state, remote)
    with session_scope() as session:
        stored = crud_mirror.folders_of(session, server_id=state.server_id)
        chosen_names = {folder.name for folder in chosen}
        # Folders gone from the server, or no longer selected, leave the mirror.
        dropped = [folder.id or 0 for name, folder in stored.items() if name not in chosen_names]
        if dropped:
            keep_lease(session, server_id=state.server_id, holder=state.holder)  # this deletes mail
            _announce_dropped(session, state, stored, chosen_names, {folder.name for folder in remote})
            state.removed_message_ids.update(crud_mirror.delete_folders(session, folder_ids=dropped))
    kept = {name: folder for name, folder in stored.items() if name in chosen_names}
    sync_folders(client, state, chosen, listed=listed, stored=kept)


def _warn_missing(state: RunState, remote: list[RemoteFolder]) -> None:
    """Log the named folders the server lacks, with the folder meant when only the case differs."""
    hints = near_misses(remote, state.missing_folders)
    log.warning(
        "server %s has no folder %s (named in folders_to_sync): the others are synced%s",
        state.server_id,
        ", ".join(repr(name) for name in state.missing_folders),
        "".join(f"; {name!r} differs only in case from {hints[name]!r}" for name in hints),
    )


def _announce_dropped(
    session: Session, state: RunState, stored: dict[str, Folder], chosen: set[str], on_server: set[str]
) -> None:
    """A ``folder.deleted`` per mirrored folder about to leave the mirror (standing for all its mail)."""
    if state.initial:
        return
    gone = {name: folder for name, folder in stored.items() if name not in chosen}
    counts = crud_mirror.count_by_folder(session, folder_ids=[folder.id or 0 for folder in gone.values()])
    for name, folder in sorted(gone.items()):
        state.record_event(
            session,
            EventType.FOLDER_DELETED,
            {
                "folder": name,
                # "not_selected": still on the server, no longer mirrored (folders_to_sync, exclude_trash)
                "reason": "not_selected" if name in on_server else "gone",
                "emails_deleted": counts.get(folder.id or 0, 0),
                "imap_server": state.server_id,
            },
        )


def _current(run_id: int) -> SyncRun:
    """The run as stored."""
    with session_scope() as session:
        return crud_runs.get_run(session, run_id=run_id)


def _deleted(server_id: int) -> bool:
    """Whether the server is gone from the database."""
    with session_scope() as session:
        return not crud_servers.server_exists(session, server_id=server_id)


def _finish(run_id: int, state: RunState, *, status: SyncStatus, error: str = "", code: str = "") -> SyncRun:
    """Release the lease, store the outcome on the run and the server, announce sync.completed.

    Only the lease's holder does: one whose lease lapsed and was taken over leaves the run, the
    server and the lease to the worker that took over (and raises ServerGone if the server went).
    """
    now = utcnow()
    try:
        with session_scope() as session:
            give_back_lease(session, server_id=state.server_id, holder=state.holder)
            _store_outcome(session, run_id, state, now, status=status, error=error, code=code)
            finished = crud_runs.get_run(session, run_id=run_id)
    except LeaseLost as exc:
        log.warning(
            "sync run %s of server %s ended as %s, but %s: its outcome is left to that worker",
            run_id,
            state.server_id,
            status,
            exc,
        )
        return _current(run_id)
    if status == SyncStatus.SUCCESS and state.new:
        with session_scope() as session:
            crud_maintenance.refresh_statistics(session)
    pubsub.publish(pubsub.run_channel(run_id), {"status": status})
    return finished


def _store_outcome(
    session: Session, run_id: int, state: RunState, now: datetime, *, status: str, error: str, code: str
) -> None:
    """The run's counts and outcome, the server's last sync and next one, the sync.completed event."""
    crud_runs.update_run(
        session,
        run_id=run_id,
        status=status,
        error=error,
        error_code=code,
        finished_at=now,
        progress_done=state.done,
        progress_total=state.total,
        missing_folders=",".join(state.missing_folders),
        **state.counts(),
    )
    server = session.get(ImapServer, state.server_id)
    if server is not None:
        server.last_sync_status = status
        server.last_error = error
        if status == SyncStatus.SUCCESS:
            server.last_sync = now
        interval = server.sync_interval_seconds or settings.sync_interval_seconds
        server.next_sync_at = now + timedelta(seconds=interval)
        session.add(server)
    if status == SyncStatus.SUCCESS and state.initial:
        folders, emails = crud_mirror.server_totals(session, server_id=state.server_id)
        state.record_event(
            session,
            EventType.SERVER_INITIAL_SYNC_COMPLETED,
            {"imap_server": state.server_id, "sync_run": run_id, "folders": folders, "emails": emails},
        )
    state.record_event(
        session,
        EventType.SYNC_COMPLETED,
        {
            "imap_server": state.server_id,
            "sync_run": run_id,
            "status": status,
            "error": error,
            "error_code": code,
            "duration_seconds": round(state.duration, 3),
            **state.counts(),
            "missing_folders": state.missing_folders,
        },
    )
