"""A real SMTP server for tests (aiosmtpd, in a thread of the test process), recording what it accepts.

It listens on 127.0.0.1 on a port it bound itself (no race for a "free" one), with STARTTLS (required
before anything else), implicit TLS, or clear text, and a self-signed certificate usable as a CA file
(``ca_cert_path``). With ``users`` it is a submission server: AUTH PLAIN/LOGIN against them, and no
MAIL before a login; without, it offers no AUTH at all. With ``oauth2_check`` (a bearer token's user, or
None) it takes AUTH XOAUTH2 and OAUTHBEARER too, answering a bad token as Gmail does. Tests steer it
with ``fail_next`` (answers to DATA), ``reject_recipient`` (answers to RCPT) and ``fail_auth`` (answers
to AUTH); ``clear`` forgets the messages and every control, so one server can serve a whole session.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
from base64 import b64decode
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from imap2api.config import settings
from tests.support.dovecot import _write_self_signed_cert

TLS_MODES = ("starttls", "ssl", "none")
SMTP_USERS = {"alice@example.test": "smtp-secret"}  # the session fixtures' users (tests/conftest.py)
_CA_ENV = "IMAP2API_IMAP_CA_FILE"
_OAUTH2_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
_PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")
# Gmail's answer to a bad token: this JSON as a challenge, the failure once the client has answered it.
_OAUTH2_ERROR = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
_OAUTH2_FAILURE = "535 5.7.8 Username and Password not accepted"

# aiosmtpd warns at every successful login that it set a deprecated attribute itself: noise in failures' logs.
logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())


@dataclass(frozen=True)
class Received:
    """One accepted message: its envelope, its bytes as received, and who had logged in."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]  # as aiosmtpd parsed them, upper-case: ("SIZE=123", "SMTPUTF8")
    login: str | None


class _Handler:
    """aiosmtpd's handler and authenticator: applies the test's controls, records what it accepts."""

    def __init__(
        self, users: dict[str, str] | None, oauth2_check: Callable[[str], str | None] | None
    ) -> None:
        self.users = users
        self.oauth2_check = oauth2_check
        self.offers_auth = users is not None or oauth2_check is not None
        self.changed = threading.Condition()
        self.messages: list[Received] = []
        # No auth_ prefix on attributes: aiosmtpd would offer each as an AUTH mechanism.
        self.logins_tried: list[str] = []
        self.data_replies: list[str] = []
        self.rejected: dict[str, str] = {}
        self.login_reply: str | None = None

    def excluded_mechanisms(self) -> list[str]:
        """The AUTH mechanisms not to offer: aiosmtpd offers its own and every ``auth_`` method here."""
        excluded = [] if self.oauth2_check is not None else list(_OAUTH2_MECHANISMS)
        if self.users is None and self.oauth2_check is not None:
            excluded += _PASSWORD_MECHANISMS
        return excluded

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Check a login against ``users``; a failure answers 535 (handled=False lets aiosmtpd say it)."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", errors="replace")
        with self.changed:
            self.logins_tried.append(login)
            if self.login_reply is not None:
                return AuthResult(success=False, handled=False, message=self.login_reply)
        password = auth_data.password.decode("utf-8", errors="replace")
        if self.users is None or self.users.get(login) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """Google's and Microsoft's SASL XOAUTH2: ``user=USER^Aauth=Bearer TOKEN^A^A``."""
        blob = await _initial_response(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        fields = _sasl_fields(blob)
        return await self._check_bearer(server, fields.get("user", ""), fields.get("auth", ""))

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628: ``n,a=USER,^Ahost=...^Aport=...^Aauth=Bearer TOKEN^A^A`` (``a=`` optional)."""
        blob = await _initial_response(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        gs2_header, _, rest = blob.partition("\x01")
        user = None
        for part in gs2_header.split(",")[1:]:
            if part.startswith("a="):
                user = part[2:].replace("=2C", ",").replace("=3D", "=")  # RFC 5801's escapes
        return await self._check_bearer(server, user, _sasl_fields(rest).get("auth", ""))

    async def _check_bearer(self, server: SMTP, user: str | None, authorization: str) -> AuthResult:
        """Log in as the token's user, if it is ``user`` (None: whoever it belongs to)."""
        with self.changed:
            self.logins_tried.append(user or "")
            if self.login_reply is not None:
                return AuthResult(success=False, handled=False, message=self.login_reply)
        assert self.oauth2_check is not None  # else aiosmtpd was told to leave these mechanisms out
        scheme, _, token = authorization.partition(" ")
        owner = self.oauth2_check(token) if scheme.lower() == "bearer" and token else None
        if owner is not None and user in (None, owner):
            return AuthResult(success=True, auth_data=owner)
        if await server.challenge_auth(_OAUTH2_ERROR) is MISSING:
            return AuthResult(success=False, handled=True)  # aborted with "*", aiosmtpd has answered
        return AuthResult(success=False, handled=False, message=_OAUTH2_FAILURE)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's answer, less AUTH when there is no way to log in (it would offer it regardless)."""
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if not self.offers_auth:
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        """Accept the sender, once logged in when there are logins (a submission server)."""
        if self.offers_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept a recipient unless the test rejects it."""
        with self.changed:
            reply = self.rejected.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the message, unless the test asked for a failure answer."""
        with self.changed:
            if self.data_replies:
                return self.data_replies.pop(0)
            login = session.auth_data if isinstance(session.auth_data, str) else None
            content = envelope.original_content or b""
            received = Received(
                str(envelope.mail_from),
                tuple(envelope.rcpt_tos),
                content,
                tuple(envelope.mail_options),
                login,
            )
            self.messages.append(received)
            self.changed.notify_all()
            return f"250 2.0.0 Ok: queued as {len(self.messages)}"


async def _initial_response(server: SMTP, args: list[str]) -> str | None:
    """The client's first SASL message, from the AUTH line or asked for; None once an error is answered."""
    if len(args) == 1:
        blob = await server.challenge_auth("")
        return blob.decode("utf-8", errors="replace") if isinstance(blob, bytes) else None
    try:
        return b64decode(args[1], validate=True).decode("utf-8", errors="replace")
    except ValueError:
        await server.push("501 5.5.2 Can't decode base64")
        return None


def _sasl_fields(text: str) -> dict[str, str]:
    """The ``key=value`` fields of an XOAUTH2 or OAUTHBEARER message, separated by ^A."""
    return dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)


class _Controller(Controller):
    """aiosmtpd's threaded controller, serving a socket bound beforehand."""

    def __init__(self, handler: _Handler, listener: socket.socket, **kwargs: Any) -> None:
        host, port = listener.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._listener = listener

    def _create_server(self) -> Awaitable[Any]:
        return self.loop.create_server(self._factory_invoker, sock=self._listener, ssl=self.ssl_context)


class SmtpServer:
    """A loopback SMTP server; ``messages`` lists what it accepted, oldest first."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: str = "starttls",
        users: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        smtputf8: bool = True,
        size_limit: int | None = None,
        oauth2_check: Callable[[str], str | None] | None = None,
    ) -> None:
        """Write the certificate; ``start`` listens. ``size_limit`` None: no SIZE limit.

        ``oauth2_check``: a bearer token's user (None: not valid), for AUTH XOAUTH2 and OAUTHBEARER.
        """
        assert tls in TLS_MODES, tls
        self.tls = tls
        self.auth_require_tls = auth_require_tls
        self.smtputf8 = smtputf8
        self.size_limit = size_limit
        self._handler = _Handler(users, oauth2_check)
        self._dir = Path(tempfile.mkdtemp(prefix="imap2api-smtp-"))
        self.ca_cert_path = self._dir / "cert.pem"
        self._key_path = self._dir / "key.pem"
        _write_self_signed_cert(self.ca_cert_path, self._key_path)
        self._controller: _Controller | None = None
        self.port = 0

    def start(self) -> SmtpServer:
        """Listen (on a new port each time) and serve in a thread."""
        assert self._controller is None, "already started"
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_cert_path, self._key_path)
        listener = socket.create_server((self.host, 0))
        self.port = listener.getsockname()[1]
        options: dict[str, Any] = {
            "server_hostname": "localhost",  # else aiosmtpd asks socket.getfqdn() at every connection
            "data_size_limit": self.size_limit,
            "enable_SMTPUTF8": self.smtputf8,
            "authenticator": self._handler,
            "auth_exclude_mechanism": self._handler.excluded_mechanisms(),
            # Implicit TLS is invisible to aiosmtpd's check (it knows of STARTTLS only): the link is TLS.
            "auth_require_tls": self.auth_require_tls and self.tls != "ssl",
        }
        if self.tls == "ssl":
            options["ssl_context"] = context
        elif self.tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        self._controller = _Controller(self._handler, listener, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving (the certificate stays until ``close``)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def close(self) -> None:
        """Stop and remove the certificate."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    @contextmanager
    def trusted(self) -> Iterator[None]:
        """Trust this server's certificate (``imap_ca_file``, as IMAP) as well as the one trusted already.

        A bundle of both, so that a test can send here and file into the Dovecot fixture's mailbox; the
        previous setting comes back afterwards unless something else changed it meanwhile.
        """
        before, before_env = settings.imap_ca_file, os.environ.get(_CA_ENV)
        pem = self.ca_cert_path.read_bytes() + (b"\n" + Path(before).read_bytes() if before else b"")
        handle, name = tempfile.mkstemp(suffix=".pem", dir=self._dir)
        os.close(handle)
        bundle = Path(name)
        bundle.write_bytes(pem)
        settings.imap_ca_file = os.environ[_CA_ENV] = str(bundle)
        try:
            yield
        finally:
            if settings.imap_ca_file == str(bundle):
                settings.imap_ca_file = before
            if os.environ.get(_CA_ENV) == str(bundle):
                if before_env is None:
                    os.environ.pop(_CA_ENV)
                else:
                    os.environ[_CA_ENV] = before_env
            bundle.unlink(missing_ok=True)

    def __enter__(self) -> SmtpServer:
        """The started server."""
        return self.start() if self._controller is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop and clean up."""
        self.close()

    @property
    def messages(self) -> list[Received]:
        """What the server accepted so far, oldest first."""
        with self._handler.changed:
            return list(self._handler.messages)

    @property
    def auth_attempts(self) -> list[str]:
        """The usernames of every AUTH attempt, failed ones included, oldest first."""
        with self._handler.changed:
            return list(self._handler.logins_tried)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """The messages once there are at least ``count``; AssertionError after ``timeout`` seconds."""
        with self._handler.changed:
            if not self._handler.changed.wait_for(lambda: len(self._handler.messages) >= count, timeout):
                raise AssertionError(f"{len(self._handler.messages)} of {count} messages after {timeout} s")
            return list(self._handler.messages)

    def fail_next(self, n: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next ``n`` messages (the end of DATA) with ``reply`` instead of taking them."""
        with self._handler.changed:
            self._handler.data_replies.extend([reply] * n)

    def reject_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Answer RCPT for ``address`` (any case) with ``reply``, until ``clear``."""
        with self._handler.changed:
            self._handler.rejected[address.lower()] = reply

    def fail_auth(self, reply: str = "454 4.7.0 Temporary authentication failure") -> None:
        """Answer every AUTH with ``reply``, until ``clear``."""
        with self._handler.changed:
            self._handler.login_reply = reply

    def clear(self) -> None:
        """Forget the messages, the AUTH attempts and every control."""
        with self._handler.changed:
            self._handler.messages.clear()
            self._handler.logins_tried.clear()
            self._handler.data_replies.clear()
            self._handler.rejected.clear()
            self._handler.login_reply = None
