"""Opening an IMAP connection: implicit TLS, STARTTLS when offered, or plain; failures become typed errors."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import LoginError

from imap2api.config import settings
from imap2api.errors import SyncFailed


@dataclass(frozen=True)
class ImapAccount:
    """What is needed to log in to a mailbox."""

    host: str
    port: int
    username: str
    password: str
    use_ssl: bool


def tls_context() -> ssl.SSLContext:
    """The TLS context for IMAP: system CAs (or ``IMAP2API_IMAP_CA_FILE``), verification on unless disabled."""
    context = ssl.create_default_context(cafile=settings.imap_ca_file or None)
    if not settings.imap_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _fail(account: ImapAccount, code: str, reason: str) -> SyncFailed:
    """A SyncFailed naming the server."""
    return SyncFailed(f"{reason} ({account.host}:{account.port})", code=code)


def open_connection(account: ImapAccount) -> IMAPClient:
    """Connect and log in, or raise SyncFailed with a code saying what went wrong."""
    timeout = SocketTimeout(connect=settings.imap_timeout_seconds, read=settings.imap_timeout_seconds)
    try:
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=account.use_ssl,
            ssl_context=tls_context() if account.use_ssl else None,
            timeout=timeout,
        )
    except ssl.SSLError as exc:
        raise _fail(account, "IMAP_TLS_FAILED", f"TLS handshake failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise _fail(account, "IMAP_TIMEOUT", "timed out connecting to the IMAP server") from exc
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
        # A plain client talking to a TLS port reads garbage instead of a greeting.
        hint = " (is use_ssl right for this port?)" if not account.use_ssl else ""
        raise _fail(account, "IMAP_PROTOCOL_ERROR", f"unexpected greeting from the server{hint}: {exc}") from exc
    except OSError as exc:
        raise _fail(account, "IMAP_CONNECTION_FAILED", f"could not connect: {exc.strerror or exc}") from exc
    client.normalise_times = False  # keep INTERNALDATE timezone-aware
    try:
        if not account.use_ssl and client.has_capability("STARTTLS"):
            client.starttls(tls_context())
        client.login(account.username, account.password)
        if client.has_capability("CONDSTORE"):
            client.enable("CONDSTORE")
    except LoginError as exc:
        _close(client)
        raise _fail(account, "IMAP_AUTH_FAILED", f"login failed for {account.username!r}: {_text(exc)}") from exc
    except ssl.SSLError as exc:
        _close(client)
        raise _fail(account, "IMAP_TLS_FAILED", f"STARTTLS failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        _close(client)
        raise _fail(account, "IMAP_TIMEOUT", "the IMAP server stopped answering") from exc
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError) as exc:
        _close(client)
        raise _fail(account, "IMAP_PROTOCOL_ERROR", f"IMAP error while logging in: {_text(exc)}") from exc
    return client


def _text(exc: BaseException) -> str:
    """An exception's message, with imaplib's bytes decoded."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def _close(client: IMAPClient) -> None:
    """Log out politely, or just drop the socket."""
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass


@contextmanager
def connected(account: ImapAccount) -> Iterator[IMAPClient]:
    """A logged-in client, logged out afterwards."""
    client = open_connection(account)
    try:
        yield client
    finally:
        _close(client)
