"""A run writes only while it holds its server's lease, and stops when the lease or the server is gone."""

from __future__ import annotations

from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import servers as crud_servers
from imap2api.crud import sync_runs as crud_runs


class LeaseLost(Exception):
    """Raised when the run's lease lapsed and another worker took the server over."""


class ServerGone(Exception):
    """Raised when the server, and its runs with it, was deleted: nothing is left to sync or to report to."""


def _gone_or_lost(session: Session, server_id: int, holder: str) -> Exception:
    """Why ``holder`` no longer holds the lease: the server was deleted, or someone else took it."""
    if not crud_servers.server_exists(session, server_id=server_id):
        return ServerGone(f"server {server_id} was deleted during its sync")
    return LeaseLost(f"the lease of server {server_id} passed from {holder} to another worker")


def keep_lease(session: Session, *, server_id: int, holder: str) -> None:
    """Renew the lease as the first write of a transaction, or raise LeaseLost / ServerGone.

    Taking the server's row first orders this transaction's locks as a DELETE of the server orders
    its own (server, then mail), so on PostgreSQL the two queue instead of deadlocking, and a deleted
    server is noticed before any insert trips over its foreign keys.
    """
    seconds = settings.sync_lease_seconds
    if not crud_runs.renew_lease(session, server_id=server_id, holder=holder, seconds=seconds):
        raise _gone_or_lost(session, server_id, holder)


def give_back_lease(session: Session, *, server_id: int, holder: str) -> None:
    """Release the lease as the first write of the run's last transaction, or raise LeaseLost / ServerGone."""
    if not crud_runs.release_lease(session, server_id=server_id, holder=holder):
        raise _gone_or_lost(session, server_id, holder)
