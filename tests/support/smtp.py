"""A real SMTP server for tests (aiosmtpd, in a thread of the test process), recording what it accepts.

It listens on 127.0.0.1 on a port it bound itself (no race for a "free" one), with STARTTLS (required
before anything else), implicit TLS, or clear text, and a self-signed certificate usable as a CA file
(``ca_cert_path``). With ``users`` it is a submission server: AUTH PLAIN/LOGIN against them, and no
MAIL before a login; without, it offers no AUTH at all. Tests steer it with ``fail_next`` (answers to
DATA), ``reject_recipient`` (answers to RCPT) and ``fail_auth`` (answers to AUTH); ``clear`` forgets
the messages and every control, so one server can serve a whole session.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from imap2api.config import settings
from tests.support.dovecot import _write_self_signed_cert

TLS_MODES = ("starttls", "ssl", "none")
SMTP_USERS = {"alice@example.test": "smtp-secret"}  # the session fixtures' users (tests/conftest.py)
_CA_ENV = "IMAP2API_IMAP_CA_FILE"

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

    def __init__(self, users: dict[str, str] | None) -> None:
        self.users = users
        self.changed = threading.Condition()
        self.messages: list[Received] = []
        self.auth_attempts: list[str] = []
        self.data_replies: list[str] = []
        self.rejected: dict[str, str] = {}
        self.auth_reply: str | None = None

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Check a login against ``users``; a failure answers 535 (handled=False lets aiosmtpd say it)."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", errors="replace")
        with self.changed:
            self.auth_attempts.append(login)
            if self.auth_reply is not None:
                return AuthResult(success=False, handled=False, message=self.auth_reply)
        password = auth_data.password.decode("utf-8", errors="replace")
        if self.users is None or self.users.get(login) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's answer, less AUTH when there are no users (it would offer it regardless)."""
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if self.users is None:
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        """Accept the sender, once logged in when there are users (a submission server)."""
        if self.users is not None and not session.authenticated:
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
    ) -> None:
        """Write the certificate; ``start`` listens. ``size_limit`` None: no SIZE limit."""
        assert tls in TLS_MODES, tls
        self.tls = tls
        self.auth_require_tls = auth_require_tls
        self.smtputf8 = smtputf8
        self.size_limit = size_limit
        self._handler = _Handler(users)
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
            return list(self._handler.auth_attempts)

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
            self._handler.auth_reply = reply

    def clear(self) -> None:
        """Forget the messages, the AUTH attempts and every control."""
        with self._handler.changed:
            self._handler.messages.clear()
            self._handler.auth_attempts.clear()
            self._handler.data_replies.clear()
            self._handler.rejected.clear()
            self._handler.auth_reply = None
