"""Opening an IMAP connection: implicit TLS, required STARTTLS, or clear text if chosen; typed failures."""

from __future__ import annotations

import contextlib
import errno
import functools
import imaplib
import logging
import os
import socket
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
from imap2api.sync.credentials import UNSENDABLE, imap_login_argument, refusal_text, server_text
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
    tls_ca_cert: str = ""  # PEM certificates trusted for this server, besides the system's


# Without implicit TLS, a server silent this long may be an implicit-TLS port waiting for a ClientHello: it is
# probed, for at most TLS_PROBE_SECONDS, before the greeting is waited for again (so a real timeout takes
# at most TLS_PROBE_SECONDS longer than IMAP2API_IMAP_TIMEOUT_SECONDS).
GREETING_WAIT_SECONDS = 3.0
TLS_PROBE_SECONDS = 3.0
IMPLICIT_TLS_PORT = (
    "the server sent no greeting: this port speaks TLS from the first byte (implicit TLS, as on 993) and "
    "waits for a TLS handshake; set use_ssl true (tls_mode ssl), or use the server's STARTTLS port "
    "(usually 143)"
)
PLAIN_PORT = (
    "the port answered in clear text, not TLS: it is likely a plain IMAP (STARTTLS) port; set use_ssl "
    "false (tls_mode starttls), or use the server's implicit-TLS port (usually 993)"
)
# What OpenSSL says when the first bytes it reads are no TLS record (a clear-text greeting, say).
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"}
)
# What fixes a certificate that did not verify, by OpenSSL's X509_V_ERR_* code (the rest: _TRUST_FIX).
_TRUST_FIX = (
    "to trust it, set the server's tls_ca_cert to its certificate (or its CA's), in PEM; or set "
    "tls_verify false to accept any certificate"
)
_MISMATCH_FIX = (
    "enter as host a name the certificate is valid for; or set tls_verify false to accept any certificate"
)
_VERIFY_FIXES = {
    62: _MISMATCH_FIX,  # the host name
    64: _MISMATCH_FIX,  # the IP address
    9: "the certificate is not valid yet (is this clock right?); or set tls_verify false",
    10: "the server must renew its certificate; or set tls_verify false to accept any certificate",
}


_LOGGING_IN = threading.local()


class _HideLogin(logging.Filter):
    """Drops imapclient's debug lines while this thread sends LOGIN: they show the password (raw commands
    are logged as sent, literals included, unlike imapclient's own login)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every line logged outside of ``_login``."""
        return not getattr(_LOGGING_IN, "active", False)


logging.getLogger("imapclient.imapclient").addFilter(_HideLogin())


class TlsSettingsError(ssl.SSLError):
    """A CA setting is unusable (``IMAP2API_IMAP_CA_FILE``, or a server's ``tls_ca_cert``); an SSLError, so
    that every TLS caller reports it as a TLS failure, never as the network's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message  # what callers show of an SSLError

    def __str__(self) -> str:
        """The message alone (an OSError of one argument would show the tuple)."""
        return self.reason


def tls_context(*, verify: bool = True, ca_cert: str = "") -> ssl.SSLContext:
    """The TLS context for IMAP and SMTP, shared (never change it); raises TlsSettingsError.

    Trusted: the system CAs, plus the certificates of ``IMAP2API_IMAP_CA_FILE``, plus the server's own
    ``ca_cert`` (PEM). The file adds to the system CAs rather than replacing them, so that one self-signed
    server and Gmail need no hand-made bundle. The certificate is not checked at all when the server's
    ``tls_verify`` or ``IMAP2API_IMAP_TLS_VERIFY`` is false.
    """
    if not (verify and settings.imap_tls_verify):
        return _unverified_context()
    ca_file = settings.imap_ca_file or ""
    return _verifying_context(ca_cert, ca_file, _file_stamp(ca_file))


def check_tls_settings() -> None:
    """Raise TlsSettingsError unless ``IMAP2API_IMAP_CA_FILE``, if set, is a usable PEM file (start-up)."""
    if settings.imap_ca_file:
        _verifying_context("", settings.imap_ca_file, _file_stamp(settings.imap_ca_file))


def _file_stamp(path: str) -> tuple[int, int]:
    """The file's modification time and size: a changed file makes a new context, an unchanged one not."""
    if not path:
        return (0, 0)
    try:
        status = os.stat(path)
    except OSError as exc:
        raise _ca_file_error(path, exc) from None
    return (status.st_mtime_ns, status.st_size)


def _ca_file_error(path: str, exc: OSError) -> TlsSettingsError:
    """The configuration error for a CA file that cannot be read."""
    if exc.errno == errno.ENOENT:
        return TlsSettingsError(f"IMAP2API_IMAP_CA_FILE={path} does not exist")
    return TlsSettingsError(f"IMAP2API_IMAP_CA_FILE={path} cannot be read: {exc.strerror or exc}")


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    """Encryption without any check of the certificate or its name."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# A few ms each (the system store is read every time): cached by what goes in, stamp of the file included.
@functools.lru_cache(maxsize=32)
def _verifying_context(ca_cert: str, ca_file: str, stamp: tuple[int, int]) -> ssl.SSLContext:
    """System CAs, then the file's, then the server's PEM."""
    del stamp  # only part of the cache key
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except ssl.SSLError as exc:
            raise TlsSettingsError(
                f"IMAP2API_IMAP_CA_FILE={ca_file} holds no usable PEM certificate ({exc.reason or exc})"
            ) from None
        except OSError as exc:
            raise _ca_file_error(ca_file, exc) from None
    if ca_cert:
        try:
            context.load_verify_locations(cadata=ca_cert)
        except (ssl.SSLError, ValueError) as exc:  # ValueError: not ASCII
            raise TlsSettingsError(
                f"the server's tls_ca_cert holds no usable PEM certificate ({exc}); enter it again"
            ) from None
    return context


def tls_problem(exc: ssl.SSLError) -> str:
    """Why TLS failed, in words; for a certificate that did not verify, the settings that fix it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = (exc.verify_message or exc.reason or "certificate verify failed").rstrip(".")
        fix = _VERIFY_FIXES.get(exc.verify_code, _TRUST_FIX)
        return f"the server's certificate did not verify ({detail}): {fix}"
    return exc.reason or str(exc)


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
    context = None
    if account.tls_mode != "none":
        try:
            context = tls_context(verify=account.tls_verify, ca_cert=account.tls_ca_cert)
        except TlsSettingsError as exc:
            raise _fail(account, "IMAP_TLS_FAILED", exc.reason) from exc
    try:
        client = _greeted(account, host, context if implicit else None, seconds)
    except ssl.SSLError as exc:
        reason = PLAIN_PORT if exc.reason in _NOT_TLS else tls_problem(exc)
        raise _fail(account, "IMAP_TLS_FAILED", f"TLS handshake failed: {reason}") from exc
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
        _secure_and_log_in(client, account, context)
        enable_extensions(client)
    except SyncFailed:
        _close(client)
        raise
    except LoginError as exc:
        _close(client)
        reason = refusal_text(str(exc))
        raise _fail(account, "IMAP_AUTH_FAILED", f"login failed for {account.username!r}: {reason}") from exc
    except ssl.SSLError as exc:
        _close(client)
        raise _fail(account, "IMAP_TLS_FAILED", f"STARTTLS failed: {tls_problem(exc)}") from exc
    except TimeoutError as exc:
        _close(client)
        raise _fail(account, "IMAP_TIMEOUT", "the IMAP server stopped answering") from exc
    except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError) as exc:
        _close(client)
        raise _fail(
            account, "IMAP_PROTOCOL_ERROR", "the server did not answer like an IMAP server while logging in"
        ) from exc
    return client


def _greeted(account: ImapAccount, host: str, context: ssl.SSLContext | None, seconds: float) -> IMAPClient:
    """A connection that has read the server's greeting (implicit TLS when ``context`` is given).

    Without TLS first, a server silent for GREETING_WAIT_SECONDS is asked for a TLS handshake on a
    second connection (nothing else is sent): an answer means the port wants implicit TLS; else the
    greeting is awaited again on a new connection, for the rest of the timeout.
    """
    if context is not None:
        return _imap_client(host, account.port, context, connect=seconds, read=seconds)
    wait = min(seconds, GREETING_WAIT_SECONDS)
    try:
        return _imap_client(host, account.port, None, connect=wait, read=seconds)
    except TimeoutError:
        if _speaks_tls(host, account.port, min(seconds, TLS_PROBE_SECONDS)):
            raise _fail(account, "IMAP_PROTOCOL_ERROR", IMPLICIT_TLS_PORT) from None
        if wait >= seconds:
            raise
    return _imap_client(host, account.port, None, connect=seconds - wait, read=seconds)


def _imap_client(
    host: str, port: int, context: ssl.SSLContext | None, *, connect: float, read: float
) -> IMAPClient:
    """Connect and read the greeting within ``connect`` seconds; later reads wait ``read`` seconds."""
    return IMAPClient(
        host,
        port=port,
        ssl=context is not None,
        ssl_context=context,
        timeout=SocketTimeout(connect=connect, read=read),
    )


def _speaks_tls(host: str, port: int, seconds: float) -> bool:
    """Whether the port answers a TLS ClientHello as a TLS server does (its certificate unchecked)."""
    try:
        with (
            socket.create_connection((host, port), timeout=seconds) as sock,
            _unverified_context().wrap_socket(sock, server_hostname=host),
        ):
            return True
    except ssl.SSLError as exc:
        return "ALERT" in (exc.reason or "")  # a TLS alert (no common version, say) is a TLS server's answer
    except (OSError, ValueError):
        return False


def _secure_and_log_in(client: IMAPClient, account: ImapAccount, context: ssl.SSLContext | None) -> None:
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
        client.starttls(context)
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
    return refusal_text(text.replace(token, "***"))


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
