"""A connection test: log in with server settings and list the folders, storing nothing.

The settings are checked by the rules of a new server (``validate_server``); the login is the sync's
(``open_connection``), so an answer says what a sync would meet. The test is bounded in time: each
socket read by ``IMAP2API_IMAP_TIMEOUT_SECONDS``, the whole test so that it answers before the
request's own timeout. It connects to a host and port of the caller's choosing, as a stored server
does; like a sync, it never repeats what a service that is not IMAP answered (``sync.connection``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import imaplib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from imap2api.config import settings
from imap2api.crud.servers import WRITABLE
from imap2api.enums import AuthType
from imap2api.errors import SyncFailed
from imap2api.models import ImapServer
from imap2api.oauth2.tokens import NOT_CONNECTED, OAuth2Failure
from imap2api.security import encrypt_secret
from imap2api.sync.connection import ImapAccount, connected
from imap2api.sync.engine import account_of
from imap2api.sync.folders import list_remote_folders
from imap2api.validation import validate_server

log = logging.getLogger("imap2api.sync")

# Left of the request's own bound: the test's answer, not the timeout middleware's 503, reaches the caller.
REQUEST_MARGIN_SECONDS = 2.0
OAUTH2_NEEDS_TOKEN = (
    "An OAuth2 server is tested with an oauth2_access_token in the input, or once it is connected "
    "(startOAuth2Authorization): nothing here can log in without a token."
)
TOKEN_REFUSED = "the IMAP server refused the access token"


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome: the folders and capabilities, or the error and its code (IMAP_AUTH_FAILED...)."""

    ok: bool
    folders: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    error: str = ""
    code: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The REST body: ``ok`` with folders and capabilities, or ``ok`` false with error and code."""
        if self.ok:
            return {"ok": True, "folders": self.folders, "capabilities": self.capabilities}
        return {"ok": False, "error": self.error, "code": self.code}


def budget_seconds() -> float:
    """How long a test may take: the IMAP timeout, within the request's timeout (less a margin)."""
    seconds = settings.imap_timeout_seconds
    request = settings.request_timeout_seconds
    if request > 0:
        seconds = min(seconds, max(request - REQUEST_MARGIN_SECONDS, request / 2))
    return max(seconds, 0.1)


def _transient_server(clean: dict[str, Any]) -> ImapServer:
    """An unsaved server row of validated settings: ``account_of`` builds its account as for a sync."""
    return ImapServer(
        owner_id=0,
        password_encrypted=encrypt_secret(clean["password"]) if clean.get("password") else "",
        **{name: clean[name] for name in WRITABLE if name in clean},
    )


def _given_token(token: str) -> Callable[[str], str]:
    """A token source with only the given token: refused once, there is no other to try."""

    def bearer(rejected: str) -> str:
        if rejected:
            raise OAuth2Failure("IMAP_AUTH_FAILED", TOKEN_REFUSED)
        return token

    return bearer


def account_for(changes: dict[str, Any]) -> ImapAccount | ConnectionCheck:
    """The account to log in to, from settings as a create takes them; raises ValidationFailed.

    An OAuth2 server without an access token in the settings has nothing to log in with: the
    returned ConnectionCheck says so.
    """
    clean = validate_server(changes)
    server = _transient_server(clean)
    if server.auth_type != AuthType.OAUTH2:
        return account_of(server)
    token = clean.get("oauth2_access_token")
    if not token:
        return ConnectionCheck(ok=False, error=OAUTH2_NEEDS_TOKEN, code=NOT_CONNECTED)
    return dataclasses.replace(account_of(server), bearer=_given_token(token))


def probe(account: ImapAccount, *, timeout: float) -> ConnectionCheck:
    """Log in, list the folders and read the capabilities (blocking; every socket read within ``timeout``)."""
    try:
        with connected(account, timeout=timeout) as client:
            folders = [folder.name for folder in list_remote_folders(client)]
            capabilities = sorted(
                capability.decode("ascii", errors="replace") for capability in client.capabilities()
            )
    except SyncFailed as exc:
        return ConnectionCheck(ok=False, error=exc.message, code=exc.code)
    except TimeoutError:
        return ConnectionCheck(ok=False, error="the IMAP server stopped answering", code="IMAP_TIMEOUT")
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError):
        # After the login: the server's words are not repeated (they may be any service's), the code says it.
        return ConnectionCheck(
            ok=False,
            error="the server logged in but did not list its folders like an IMAP server",
            code="IMAP_PROTOCOL_ERROR",
        )
    return ConnectionCheck(ok=True, folders=folders, capabilities=capabilities)


async def run_probe(account: ImapAccount) -> ConnectionCheck:
    """``probe`` in a thread, answering IMAP_TIMEOUT when the whole test passes its budget.

    The thread cannot be interrupted: it ends by itself at its next socket timeout.
    """
    seconds = budget_seconds()
    try:
        return await asyncio.wait_for(run_in_threadpool(probe, account, timeout=seconds), timeout=seconds)
    except TimeoutError:
        log.info("connection test of %s:%s passed %g seconds", account.host, account.port, seconds)
        return ConnectionCheck(
            ok=False,
            error=f"no answer within {seconds:g} seconds ({account.host}:{account.port})",
            code="IMAP_TIMEOUT",
        )


async def check_settings(changes: dict[str, Any]) -> ConnectionCheck:
    """Test settings given as for a new server (nothing is stored); raises ValidationFailed."""
    account = account_for(changes)
    if isinstance(account, ConnectionCheck):
        return account
    return await run_probe(account)


async def check_server(server: ImapServer) -> ConnectionCheck:
    """Test a stored server with its stored credentials (OAuth2: its tokens, refreshed if need be)."""
    try:
        account = account_of(server)
    except SyncFailed as exc:
        return ConnectionCheck(ok=False, error=exc.message, code=exc.code)
    return await run_probe(account)
