"""Handing a message to the account's SMTP server: one transaction, typed failures, bounded in time.

``deliver`` connects (implicit TLS, required STARTTLS, or clear text when chosen), logs in, and runs
MAIL, RCPT and DATA itself rather than through ``sendmail``, which drops the server's final answer
(the queue id the caller keeps). The bytes go as given, but with line endings made CRLF: a bare LF
is what SMTP smuggling uses to end DATA early on a lenient server. Every failure is a
``SmtpFailure`` whose code fixes whether trying later may help (``TEMPORARY_CODES``): a 4xx
answer, a lost connection, a timeout. A 4xx or a timeout after DATA may still mean the server
took the message; retrying is then the right call (RFC 5321 6.1), at the risk of a duplicate.

``timeout`` bounds each socket operation; ``deadline`` bounds the whole transaction, against a
server that keeps a worker by dripping a byte now and then: a timer shuts the socket down, which
ends a blocked read at once. EHLO names the client with an address literal of its end of the
connection (RFC 5321 4.1.4, for a client without a name it can vouch for): no DNS, no setting.
"""

from __future__ import annotations

import base64
import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from imap2api.enums import SmtpSecurity
from imap2api.hostnames import InvalidHost, ascii_host
from imap2api.oauth2 import sasl
from imap2api.oauth2.tokens import OAuth2Failure
from imap2api.sync.connection import tls_context, tls_problem
from imap2api.sync.credentials import UNSENDABLE

MAX_REPLY = 500
TEMPORARY_CODES = frozenset({"SMTP_TEMPORARY", "SMTP_CONNECTION_FAILED", "SMTP_TIMEOUT"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LINE_END = re.compile(rb"\r\n|\r|\n")
# What a refusal was about, by the exception smtplib raises for it.
_ABOUT = {
    smtplib.SMTPConnectError: "the connection",
    smtplib.SMTPHeloError: "EHLO",
    smtplib.SMTPSenderRefused: "the sender",
    smtplib.SMTPDataError: "the message",
    smtplib.SMTPAuthenticationError: "the login",
}


@dataclass(frozen=True)
class SmtpAccount:
    """Where and how to submit mail; ``security`` is ssl (implicit TLS), starttls (required) or none."""

    host: str
    port: int
    security: str
    username: str
    password: str
    auth: bool = True
    tls_verify: bool = True
    # OAuth2 servers: the access token to log in with, given the one just refused ("" at first).
    bearer: Callable[[str], str] | None = None
    tls_ca_cert: str = ""  # PEM certificates trusted for this server, besides the system's


@dataclass(frozen=True)
class Delivered:
    """The server took the message: its answer to DATA, and the recipients it refused (address → answer)."""

    response: str
    refused: dict[str, str]


class SmtpFailure(Exception):
    """The message was not delivered; ``code`` says why, ``temporary`` whether a later attempt may succeed."""

    def __init__(self, code: str, message: str, *, temporary: bool, reply: str | None = None) -> None:
        """``reply``: the server's answer, or (None) the message itself when the failure is local."""
        message = _clean(message, limit=None)  # one line; its parts are bounded
        super().__init__(message)
        self.code = code
        self.temporary = temporary
        self.reply = _clean(message if reply is None else reply)

    @property
    def message(self) -> str:
        """One sentence saying what went wrong (``deliver``'s name the server as host:port)."""
        return str(self)


def _fail(account: SmtpAccount, code: str, reason: str, reply: str | None = None) -> SmtpFailure:
    """A failure of ``deliver``: naming the server, temporary by its code, the password nowhere."""
    host = account.host if account.host.isprintable() else ascii(account.host)
    message = _clean(f"{reason} ({host}:{account.port})", _secret(account), limit=None)
    reply = _clean(reason if reply is None else reply, _secret(account))
    return SmtpFailure(code, message, temporary=code in TEMPORARY_CODES, reply=reply)


def _secret(account: SmtpAccount) -> str:
    """The password to keep out of every text: only sent (and so only echoed) when logging in."""
    return account.password if account.auth else ""


def _clean(text: str, password: str = "", *, limit: int | None = MAX_REPLY) -> str:
    """Printable, one line, bounded, and without the password (were a server to echo it)."""
    if password:
        text = text.replace(password, "***")
    text = " ".join(_CONTROL.sub(" ", text).split())
    return (text.replace(password, "***") if password else text)[:limit]


def _text(code: int, reply: bytes | str, password: str) -> str:
    """A server answer as text: ``550 5.1.1 No such user``."""
    decoded = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
    return _clean(f"{code} {decoded}", password)


def _answer(account: SmtpAccount, code: int, reply: bytes | str, about: str) -> SmtpFailure:
    """The failure for a refusing answer: 4xx temporary, 5xx final, anything else not SMTP at all."""
    text = _text(code, reply, _secret(account))
    if 400 <= code < 500:
        return _fail(account, "SMTP_TEMPORARY", f"the server deferred {about}: {text}", text)
    if 500 <= code < 600:
        return _fail(account, "SMTP_REJECTED", f"the server refused {about}: {text}", text)
    # Never quote it: the host may be any service the worker can reach, and its banner would be shown.
    return _fail(account, "SMTP_PROTOCOL_ERROR", "the server did not answer like an SMTP server")


class _Watchdog:
    """Shuts the connection down at the deadline: a blocked read then ends at once (close() would not)."""

    def __init__(self, seconds: float | None) -> None:
        """Start the clock now, if there is a deadline."""
        self.seconds, self.fired = seconds, False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._timer = None if seconds is None else threading.Timer(seconds, self._fire)
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Watch a connection through a duplicate: TLS wrapping detaches the original socket object, and a
        shutdown through any descriptor ends the connection."""
        if self._timer is not None:
            with self._lock:
                self._socket = sock.dup()
            if self.fired:
                self._fire()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Cancel the timer and drop the duplicate."""
        if self._timer is not None:
            self._timer.cancel()
            with self._lock:
                if self._socket is not None:
                    self._socket.close()
                self._socket = None


class _Client(smtplib.SMTP):
    """smtplib's client, its sockets watched by the deadline from the constructor on (it connects)."""

    def __init__(self, watchdog: _Watchdog, **kwargs: Any) -> None:
        self.watchdog = watchdog
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        self.watchdog.watch(sock)
        return sock


class _SslClient(smtplib.SMTP_SSL, _Client):
    """Implicit TLS: SMTP_SSL wraps the socket that _Client opened and watches."""

    def __init__(self, watchdog: _Watchdog, **kwargs: Any) -> None:
        self.watchdog = watchdog
        smtplib.SMTP_SSL.__init__(self, **kwargs)


def _ehlo_name(sock: socket.socket) -> str:
    """An address literal of this end of the connection: ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``."""
    address = str(sock.getsockname()[0]).split("%")[0]  # no IPv6 zone: it names a local interface
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _log_in(client: smtplib.SMTP, account: SmtpAccount) -> None:
    """AUTH, only over TLS unless the owner chose clear text; raises SMTPAuthenticationError."""
    if account.security != SmtpSecurity.NONE and not isinstance(client.sock, ssl.SSLSocket):
        raise _fail(account, "SMTP_TLS_FAILED", "the connection is not encrypted; no password sent")
    if not client.has_extn("auth"):
        reason = "the server offers no login (AUTH) on this connection; turn auth off if it needs none"
        raise _fail(account, "SMTP_AUTH_UNAVAILABLE", reason)
    if account.bearer is not None:
        _bearer_log_in(client, account, account.bearer)
        return
    if (account.username + account.password).isascii():
        client.login(account.username, account.password)
        return
    # smtplib sends credentials as ASCII only; AUTH PLAIN carries UTF-8 (RFC 4616).
    if "PLAIN" not in client.esmtp_features["auth"].upper().split():
        reason = "the server does not offer AUTH PLAIN, which a non-ASCII username or password needs"
        raise _fail(account, "SMTP_AUTH_UNAVAILABLE", reason)
    blob = b"\0" + account.username.encode() + b"\0" + account.password.encode()
    code, reply = client.docmd("AUTH", "PLAIN " + base64.b64encode(blob).decode("ascii"))
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _bearer_log_in(client: smtplib.SMTP, account: SmtpAccount, bearer: Callable[[str], str]) -> None:
    """AUTH OAUTHBEARER (else XOAUTH2) with the access token; a refused token is refreshed once."""
    mechanism = sasl.choose(set(client.esmtp_features["auth"].split()))
    if mechanism is None:
        reason = "the server offers no OAuth2 login (AUTH OAUTHBEARER or XOAUTH2); use auth_type password"
        raise _fail(account, "SMTP_AUTH_UNAVAILABLE", reason)
    token = _token(account, bearer, "")
    try:
        _authenticate(client, account, mechanism, token)
    except smtplib.SMTPAuthenticationError:
        _authenticate(client, account, mechanism, _token(account, bearer, token))


def _token(account: SmtpAccount, bearer: Callable[[str], str], rejected: str) -> str:
    """The access token to send, or the failure saying why there is none."""
    try:
        return bearer(rejected)
    except OAuth2Failure as exc:
        raise SmtpFailure(exc.code, exc.message, temporary=exc.temporary) from None


def _authenticate(client: smtplib.SMTP, account: SmtpAccount, mechanism: str, token: str) -> None:
    """One SASL exchange; raises SMTPAuthenticationError when the server refuses the token."""
    answer = sasl.responder(mechanism, account.username, token, host=account.host, port=account.port)
    # smtplib calls it with no challenge for the initial response, then with each 334's challenge.
    client.auth(mechanism, lambda _challenge=None: answer().decode("ascii"))


def _mail_options(
    client: smtplib.SMTP, account: SmtpAccount, size: int, smtputf8: bool, eight_bit: bool
) -> list[str]:
    """MAIL FROM's parameters, or a final failure when the server cannot take the message."""
    limit = client.esmtp_features.get("size", "").strip()
    if limit.isdigit() and 0 < int(limit) < size:
        reason = f"the message has {size} bytes, more than the {limit} the server accepts"
        raise _fail(account, "SMTP_MESSAGE_TOO_LARGE", reason)
    options = [f"SIZE={size}"] if client.has_extn("size") else []
    if smtputf8:
        if not client.has_extn("smtputf8"):
            reason = "the message needs SMTPUTF8 (non-ASCII addresses) and the server does not offer it"
            raise _fail(account, "SMTPUTF8_UNSUPPORTED", reason)
        options.append("SMTPUTF8")
    if (smtputf8 or eight_bit) and client.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


def _transact(
    client: smtplib.SMTP, account: SmtpAccount, sender: str, to: list[str], data: bytes, smtputf8: bool
) -> Delivered:
    """Everything after the greeting: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA."""
    assert client.sock is not None  # connected
    client.local_hostname = _ehlo_name(client.sock)
    client.ehlo_or_helo_if_needed()
    if account.security == SmtpSecurity.STARTTLS:
        if not client.has_extn("starttls"):
            # It may also have been stripped on the way: never fall back to clear text.
            raise _fail(
                account,
                "SMTP_STARTTLS_UNAVAILABLE",
                "the server does not offer STARTTLS, so the password and the message would travel in clear "
                'text; use security "ssl" with the implicit-TLS port (465), or "none" to allow clear text',
            )
        code, reply = client.starttls(
            context=tls_context(verify=account.tls_verify, ca_cert=account.tls_ca_cert)
        )
        if 400 <= code < 500:
            raise _answer(account, code, reply, "STARTTLS")
        if code != 220:
            text = _text(code, reply, _secret(account))
            raise _fail(account, "SMTP_STARTTLS_UNAVAILABLE", f"the server refused STARTTLS: {text}", text)
        client.ehlo_or_helo_if_needed()
    if account.auth:
        _log_in(client, account)
    options = _mail_options(client, account, len(data), smtputf8, not data.isascii())
    code, reply = client.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in to:
        code, reply = client.rcpt(recipient)
        if code == 421:  # the server is closing the connection
            raise _answer(account, code, reply, f"the recipient {recipient}")
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    texts = {address: _text(code, reply, _secret(account)) for address, (code, reply) in refused.items()}
    if len(refused) == len(to):
        temporary = any(400 <= code < 500 for code, _ in refused.values())
        listed = _clean("; ".join(f"{address}: {text}" for address, text in texts.items()), _secret(account))
        verb = "deferred" if temporary else "refused"
        reason = f"the server {verb} every recipient: {listed}"
        raise _fail(account, "SMTP_TEMPORARY" if temporary else "SMTP_REJECTED", reason, listed)
    code, reply = client.data(data)
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
    return Delivered(response=_text(code, reply, _secret(account)), refused=texts)


def _failure(account: SmtpAccount, exc: Exception, watchdog: _Watchdog) -> SmtpFailure:
    """The SmtpFailure for what smtplib, ssl or the socket raised."""
    if watchdog.fired:
        reason = f"gave up after {watchdog.seconds:g} s: the server is too slow"
        return _fail(account, "SMTP_TIMEOUT", reason)
    if isinstance(exc, smtplib.SMTPAuthenticationError) and not 400 <= exc.smtp_code < 500:
        text = _text(exc.smtp_code, exc.smtp_error, _secret(account))
        return _fail(account, "SMTP_AUTH_FAILED", f"login failed for {account.username!r}: {text}", text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _answer(account, exc.smtp_code, exc.smtp_error, _ABOUT.get(type(exc), "a command"))
    # smtplib turns a read timeout into SMTPServerDisconnected, the timeout as its context.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return _fail(account, "SMTP_TIMEOUT", "the server stopped answering (timed out)")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _fail(account, "SMTP_CONNECTION_FAILED", "the server closed the connection")
    if isinstance(exc, ssl.SSLError):
        return _fail(account, "SMTP_TLS_FAILED", f"TLS failed: {tls_problem(exc)}")
    if isinstance(exc, OSError):
        return _fail(account, "SMTP_CONNECTION_FAILED", f"could not connect: {exc.strerror or exc}")
    if isinstance(exc, ValueError):  # the resolver's IDNA codec refused the name (UnicodeError included)
        return _fail(account, "SMTP_HOST_INVALID", "the host is not a valid hostname or IP address")
    return _fail(account, "SMTP_PROTOCOL_ERROR", "the server did not answer like an SMTP server")


def _checked(account: SmtpAccount, addresses: Sequence[str]) -> str:
    """The host in ASCII once the stored settings and the addresses are sendable; else a final failure."""
    if account.security not in tuple(SmtpSecurity):  # never read an unknown mode as clear text
        raise _fail(account, "SMTP_SECURITY_INVALID", f"unknown security {account.security!r}; not sent")
    for address in addresses:
        if _CONTROL.search(address):
            reason = f"the address {ascii(address)} contains a control character; not sent"
            raise _fail(account, "SMTP_ADDRESS_INVALID", reason)
    if account.auth and (UNSENDABLE.search(account.username) or UNSENDABLE.search(account.password)):
        reason = "the stored SMTP username or password contains a line break or NUL; enter it again"
        raise _fail(account, "SMTP_CREDENTIALS_INVALID", reason)
    try:
        return ascii_host(account.host)
    except InvalidHost:
        reason = f"the stored host {ascii(account.host)} is not a valid hostname or IP address; correct it"
        raise _fail(account, "SMTP_HOST_INVALID", reason) from None


def deliver(
    account: SmtpAccount,
    *,
    envelope_from: str,
    recipients: Sequence[str],
    message: bytes,
    smtputf8: bool = False,
    timeout: float,
    deadline: float | None = None,
) -> Delivered:
    """Submit ``message`` for ``recipients``, or raise SmtpFailure; SMTPUTF8 also when an address needs it."""
    unique = list(dict.fromkeys(recipients))  # a repeated address would count once among the refused
    if not unique:
        raise ValueError("deliver needs at least one recipient")
    host = _checked(account, [envelope_from, *unique])
    smtputf8 = smtputf8 or not all(address.isascii() for address in (envelope_from, *unique))
    data = _LINE_END.sub(b"\r\n", message)
    watchdog = _Watchdog(deadline)
    client: _Client | None = None
    try:
        # The constructor connects, and raises SMTPConnectError unless greeted with 220.
        where = {"host": host, "port": account.port, "local_hostname": "localhost", "timeout": timeout}
        if account.security == SmtpSecurity.SSL:
            client = _SslClient(
                watchdog, context=tls_context(verify=account.tls_verify, ca_cert=account.tls_ca_cert), **where
            )
        else:
            client = _Client(watchdog, **where)
        return _transact(client, account, envelope_from, unique, data, smtputf8)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        raise _failure(account, exc, watchdog) from exc
    finally:
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()
        watchdog.stop()
