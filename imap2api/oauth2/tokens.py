"""A server's access token: the stored one while it is fresh, else refreshed, stored and returned.

Every connection (sync, push, write-back, content, SMTP) asks ``access_token`` before it logs in. The
token is refreshed ``IMAP2API_OAUTH2_REFRESH_MARGIN_SECONDS`` before it expires, and once more when the
server refused it (``rejected``). Refreshes of one server take turns (a lock per process, the row
locked in the database across processes), so a provider that rotates refresh tokens (Microsoft) never
sees the old one twice. A refresh answered ``invalid_grant`` flags the server ``needs_reauth`` and
records ``server.auth_failed`` once; until new tokens come, every login fails at once with
``OAUTH2_REAUTH_REQUIRED`` and the provider is not asked again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import events as crud_events
from imap2api.crud import oauth2 as crud_oauth2
from imap2api.db import session_scope
from imap2api.enums import EventType, OAuth2Provider
from imap2api.models import ImapServer, utcnow
from imap2api.oauth2 import endpoint
from imap2api.oauth2.providers import ProviderUnavailable, display_name, provider_of
from imap2api.security import DecryptionError, decrypt_secret
from imap2api.services import jobs

log = logging.getLogger("imap2api.oauth2")

REAUTH_REQUIRED = "OAUTH2_REAUTH_REQUIRED"
NOT_CONNECTED = "OAUTH2_NOT_CONNECTED"
REFRESH_FAILED = "OAUTH2_REFRESH_FAILED"
# OAuth2 errors (RFC 6749 §5.2) after which a later attempt may succeed.
_TEMPORARY_ERRORS = frozenset({"temporarily_unavailable", "server_error", "slow_down"})

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


class OAuth2Failure(Exception):
    """No usable access token; ``code`` says why, ``temporary`` whether a later attempt may do better."""

    def __init__(self, code: str, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.temporary = temporary


def access_token(server_id: int, *, rejected: str = "", refreshed_before: datetime | None = None) -> str:
    """A fresh access token for the server; raises OAuth2Failure.

    ``rejected``: the token a server just refused (refreshed unless another login already did);
    ``refreshed_before``: refresh unless the last refresh is younger (the keep-alive of idle accounts).
    """
    with _lock_of(server_id):
        outcome = _fresh_or_refreshed(server_id, rejected, refreshed_before)
    if isinstance(outcome, OAuth2Failure):
        raise outcome
    return outcome


def bearer(server_id: int) -> Callable[[str], str]:
    """The token source a connection logs in with: given the token just refused ("" at first), a fresh one."""
    return lambda rejected: access_token(server_id, rejected=rejected)


def _lock_of(server_id: int) -> threading.Lock:
    """The process's lock for one server's refreshes."""
    with _locks_guard:
        return _locks.setdefault(server_id, threading.Lock())


def _fresh_or_refreshed(
    server_id: int, rejected: str, refreshed_before: datetime | None
) -> str | OAuth2Failure:
    """The token, or the failure to raise once the transaction (which may have flagged the server) ends."""
    with session_scope() as session:
        server = crud_oauth2.locked_server(session, server_id)
        if server is None:
            return OAuth2Failure(NOT_CONNECTED, "the server was deleted")
        if server.needs_reauth:
            return OAuth2Failure(REAUTH_REQUIRED, server.last_error or reauth_hint(server))
        try:
            access = _plain(server.oauth2_access_token_encrypted)
            refresh = _plain(server.oauth2_refresh_token_encrypted)
        except DecryptionError as exc:
            return OAuth2Failure("SECRET_KEY_CHANGED", str(exc))
        now = utcnow()
        stale = refreshed_before is not None and (server.oauth2_refreshed_at or now) < refreshed_before
        if access and access != rejected and not _expiring(server.oauth2_expires_at, now) and not stale:
            return access
        if not refresh:
            return _without_refresh_token(session, server, access, rejected, now)
        return _refresh(session, server, refresh)


def _plain(sealed: str) -> str:
    """A stored secret decrypted ("" stays "")."""
    return decrypt_secret(sealed) if sealed else ""


def _expiring(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a token expires within the margin (unknown expiry: used until a server refuses it)."""
    margin = timedelta(seconds=settings.oauth2_refresh_margin_seconds)
    return expires_at is not None and expires_at - margin <= now


def _without_refresh_token(
    session: Session, server: ImapServer, access: str, rejected: str, now: datetime
) -> str | OAuth2Failure:
    """Only an access token is stored: use it until it is refused or expired, then the owner must act."""
    if not access:
        return OAuth2Failure(NOT_CONNECTED, "no OAuth2 token is stored yet: " + _how_to_connect(server))
    expires_at = server.oauth2_expires_at
    if access != rejected and (expires_at is None or expires_at > now):
        return access  # about to expire, but nothing to refresh it with
    what = "was refused" if access == rejected else "has expired"
    return _needs_reauth(session, server, f"the access token {what} and no refresh token is stored")


def _refresh(session: Session, server: ImapServer, refresh: str) -> str | OAuth2Failure:
    """Ask the provider for a new access token and store what it issues."""
    try:
        provider = provider_of(server)
    except ProviderUnavailable as exc:
        return OAuth2Failure(exc.code, exc.message)
    name = display_name(server.oauth2_provider)
    try:
        tokens = endpoint.refresh(provider, refresh)
    except endpoint.TokenRefused as exc:
        if exc.error == "invalid_grant":
            return _needs_reauth(session, server, f"{name} refused the refresh token ({exc})")
        temporary = exc.error in _TEMPORARY_ERRORS or exc.status >= 500
        return OAuth2Failure(
            REFRESH_FAILED, f"{name} refused to refresh the access token ({exc})", temporary=temporary
        )
    except endpoint.EndpointFailed as exc:
        return OAuth2Failure(REFRESH_FAILED, f"refreshing the access token failed: {exc}", temporary=True)
    crud_oauth2.store_tokens(
        session,
        server,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
    )
    log.info("refreshed the OAuth2 access token of server %s", server.id)
    return tokens.access_token


def _needs_reauth(session: Session, server: ImapServer, reason: str) -> OAuth2Failure:
    """Flag the server (and announce it, the first time): no login works until it is connected again."""
    message = f"{reason}: {reauth_hint(server)}"
    if crud_oauth2.mark_needs_reauth(session, server, message):
        log.warning("server %s needs OAuth2 reauthorization: %s", server.id, reason)
        crud_events.record_event(
            session,
            owner_id=server.owner_id,
            server_id=server.id,
            type=EventType.SERVER_AUTH_FAILED,
            data={
                "imap_server": server.id,
                "auth_type": server.auth_type,
                "oauth2_provider": server.oauth2_provider,
                "error_code": REAUTH_REQUIRED,
                "error": message,
            },
        )
        jobs.enqueue(session, jobs.dispatch_job())
    return OAuth2Failure(REAUTH_REQUIRED, message)


def reauth_hint(server: ImapServer) -> str:
    """What the owner does about refused tokens."""
    return "the account must be connected again: " + _how_to_connect(server)


def _how_to_connect(server: ImapServer) -> str:
    """The two ways to give a server tokens, for its provider."""
    byo = f"send a new oauth2_refresh_token (PATCH /api/imap-servers/{server.id}/)"
    if server.oauth2_provider in (OAuth2Provider.GOOGLE, OAuth2Provider.MICROSOFT):
        hosted = f"GET /api/oauth2/{server.oauth2_provider}/authorize/?imap_server={server.id}"
        return f"{hosted} (docs/oauth2.md), or {byo}"
    return f"{byo} (docs/oauth2.md)"
