"""Opening an IMAP connection: implicit TLS, required STARTTLS, or clear text if chosen; typed failures."""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import LoginError

from imap2api.config import settings
from imap2api.errors import SyncFailed
from imap2api.hostnames import InvalidHost, ascii_host
from imap2api.oauth2 import sasl
from imap2api.oauth2.tokens import OAuth2Failure
from imap2api.sync.credentials import UNSENDABLE, imap_login_argument, server_text
from imap2api.sync.imap import enable_extensions, imaplib_connection, login_with_literals, no_delay
from imap2api.validation import TLS_MODES


@dataclass(frozen=True)
class ImapAccount:
    """What is needed to log in to a mailbox; ``tls_mode`` is ssl, starttls or none.

    ``bearer`` (OAuth2 servers): gives the access token to log in with, given the one just refused
    ("" at first); the password is then unused.
    """

    host: str
    port: int
    username: str
    password: str
    tls_mode: str = "ssl"
    tls_verify: bool = True
    bearer: Callable[[str], str] | None = None


_LOGGING_IN = threading.local()


class _HideLogin(logging.Filter):
    """Drops imapclient's debug lines while this thread sends LOGIN: they show the password (raw commands
    are logged as sent, literals included, unlike imapclient's own login)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every line logged outside of ``_login``."""
        return not getattr(_LOGGING_IN, "active", False)


logging.getLogger("imapclient.imapclient").addFilter(_HideLogin())


def tls_context(*, verify: bool = True) -> ssl.SSLContext:
    """The TLS context for IMAP: system CAs or ``IMAP2API_IMAP_CA_FILE``; the certificate is verified
    unless the server's ``tls_verify`` or ``IMAP2API_IMAP_TLS_VERIFY`` is false."""
    context = ssl.create_default_context(cafile=settings.imap_ca_file or None)
    if not (verify and settings.imap_tls_verify):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _fail(account: ImapAccount, code: str, reason: str) -> SyncFailed:
    """A SyncFailed naming the server."""
    return SyncFailed(f"{reason} ({account.host}:{account.port})", code=code)


def _host_invalid(account: ImapAccount) -> SyncFailed:
    """The SyncFailed for a stored host that is no hostname (ascii(): it may hold any character)."""
    return SyncFailed(
        f"the stored host {ascii(account.host)} is not a valid hostname or IP address; correct it",
        code="IMAP_HOST_INVALID",
    )


def _sendable_host(account: ImapAccount) -> str:
    """The host in the ASCII form DNS and TLS need; a host stored before validation refused it fails here."""
    try:
        return ascii_host(account.host)
    except InvalidHost:
        raise _host_invalid(account) from None


def open_connection(account: ImapAccount, *, timeout: float | None = None) -> IMAPClient:
    """Connect and log in, or raise SyncFailed with a code saying what went wrong.

    ``timeout`` bounds the connect and each read (default ``IMAP2API_IMAP_TIMEOUT_SECONDS``).
    """
    if UNSENDABLE.search(account.username) or UNSENDABLE.search(account.password):
        # Stored before validation refused them: sent, a line break would start a command of its own.
        raise _fail(
            account,
            "IMAP_CREDENTIALS_INVALID",
            "the stored IMAP username or password contains a line break or NUL character and was "
            "not sent; enter the password (and username) again",
        )
    if account.tls_mode not in TLS_MODES:
        raise _fail(account, "IMAP_TLS_REQUIRED", f"unknown tls_mode {account.tls_mode!r}; not connecting")
    implicit = account.tls_mode == "ssl"
    host = _sendable_host(account)
    seconds = settings.imap_timeout_seconds if timeout is None else timeout
    try:
        client = IMAPClient(
            host,
            port=account.port,
            ssl=implicit,
            ssl_context=tls_context(verify=account.tls_verify) if implicit else None,
            timeout=SocketTimeout(connect=seconds, read=seconds),
        )
    except ssl.SSLError as exc:
        raise _fail(account, "IMAP_TLS_FAILED", f"TLS handshake failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise _fail(account, "IMAP_TIMEOUT", "timed out connecting to the IMAP server") from exc
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
        # Never quote what was read: the host may be any service the worker can reach (SSH, Redis...),
        # and its banner would end up in last_error for the caller to read.
        hint = " (is tls_mode right for this port?)" if not implicit else ""
        raise _fail(
            account, "IMAP_PROTOCOL_ERROR", f"the server did not answer like an IMAP server{hint}"
        ) from exc
    except OSError as exc:
        raise _fail(account, "IMAP_CONNECTION_FAILED", f"could not connect: {exc.strerror or exc}") from exc
    except (UnicodeError, ValueError) as exc:
        # The resolver's or TLS's IDNA codec refused the name: the same failure, whatever slipped past.
        raise _host_invalid(account) from exc
    client.normalise_times = False  # keep INTERNALDATE timezone-aware
    no_delay(client)
    try:
        _secure_and_log_in(client, account)
        enable_extensions(client)
    except SyncFailed:
        _close(client)
        raise
    except LoginError as exc:
        _close(client)
        raise _fail(account, "IMAP_AUTH_FAILED", f"login failed for {account.username!r}: {exc}") from exc
    except ssl.SSLError as exc:
        _close(client)
        raise _fail(account, "IMAP_TLS_FAILED", f"STARTTLS failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        _close(client)
        raise _fail(account, "IMAP_TIMEOUT", "the IMAP server stopped answering") from exc
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError) as exc:
        _close(client)
        raise _fail(
            account, "IMAP_PROTOCOL_ERROR", "the server did not answer like an IMAP server while logging in"
        ) from exc
    return client


def _secure_and_log_in(client: IMAPClient, account: ImapAccount) -> None:
    """STARTTLS unless the mode is ssl or none, then LOGIN; clear text only when tls_mode is none."""
    if account.tls_mode == "starttls":
        if not client.has_capability("STARTTLS"):
            # No STARTTLS may also mean someone on the path stripped it: never fall back to clear text.
            raise _fail(
                account,
                "IMAP_TLS_REQUIRED",
                "the server does not offer STARTTLS, so the password would travel in clear text; "
                'use tls_mode "ssl" with the server\'s implicit-TLS port, or tls_mode "none" to '
                "allow clear text",
            )
        client.starttls(tls_context(verify=account.tls_verify))
    if account.bearer is not None:
        _bearer_login(client, account, account.bearer)
    else:
        _login(client, account.username, account.password)


def _login(client: IMAPClient, username: str, password: str) -> None:
    """LOGIN with both credentials as IMAP strings (imapclient's login sends the username unquoted)."""
    arguments = [imap_login_argument(username), imap_login_argument(password)]
    _LOGGING_IN.active = True
    try:
        typ, data = login_with_literals(client, arguments)
    finally:
        _LOGGING_IN.active = False
    if typ != "OK":
        raise LoginError(server_text(data))


def _bearer_login(client: IMAPClient, account: ImapAccount, bearer: Callable[[str], str]) -> None:
    """AUTHENTICATE OAUTHBEARER (else XOAUTH2) with the access token; a refused token is refreshed and
    tried once more, on the same connection."""
    offered = {
        capability[5:].decode("ascii", errors="replace")
        for capability in client.capabilities()
        if capability.upper().startswith(b"AUTH=")
    }
    mechanism = sasl.choose(offered)
    if mechanism is None:
        raise _fail(
            account,
            "IMAP_AUTH_UNAVAILABLE",
            "the server offers no OAuth2 login (AUTH=OAUTHBEARER or AUTH=XOAUTH2); use auth_type password",
        )
    token = _token(account, bearer, "")
    try:
        _authenticate(client, account, mechanism, token)
    except LoginError:
        # Revoked early, or expired sooner than announced: one fresh token, then the refusal stands.
        _authenticate(client, account, mechanism, _token(account, bearer, token))


def _token(account: ImapAccount, bearer: Callable[[str], str], rejected: str) -> str:
    """The access token to send, or the SyncFailed saying why there is none."""
    try:
        return bearer(rejected)
    except OAuth2Failure as exc:
        raise SyncFailed(exc.message, code=exc.code) from None


def _authenticate(client: IMAPClient, account: ImapAccount, mechanism: str, token: str) -> None:
    """One SASL exchange; raises LoginError with the server's answer (never the token) when refused."""
    answer = sasl.responder(mechanism, account.username, token, host=account.host, port=account.port)
    _LOGGING_IN.active = True
    try:
        imaplib_connection(client).authenticate(mechanism, lambda _challenge: answer())
    except imaplib.IMAP4.abort:
        raise  # the connection broke: not a refusal
    except imaplib.IMAP4.error as exc:
        raise LoginError(_clean_refusal(str(exc), token)) from None
    finally:
        _LOGGING_IN.active = False
    client._cached_capabilities = None  # noqa: SLF001 - they change at login, as login_with_literals says


def _clean_refusal(text: str, token: str) -> str:
    """The server's refusal, printable and short, the token blanked should a server echo it."""
    return server_text([text.replace(token, "***").encode()])


def _close(client: IMAPClient) -> None:
    """Log out politely, or just drop the socket."""
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        with contextlib.suppress(Exception):
            client.shutdown()


@contextmanager
def connected(account: ImapAccount, *, timeout: float | None = None) -> Iterator[IMAPClient]:
    """A logged-in client, logged out afterwards."""
    client = open_connection(account, timeout=timeout)
    try:
        yield client
    finally:
        _close(client)
