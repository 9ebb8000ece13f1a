"""The first connection's mistakes get answers that name their fix: a self-signed certificate (trusted per
server with ``tls_ca_cert``), the wrong TLS mode for the port, a URL for a host, a missing CA file, and
login refusals shown as text."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imap2api.config import settings
from imap2api.errors import SyncFailed, ValidationFailed
from imap2api.oauth2.rules import TOKEN_DESTINATION_FIELDS
from imap2api.sync import connection
from imap2api.sync.connection import (
    IMPLICIT_TLS_PORT,
    PLAIN_PORT,
    ImapAccount,
    TlsSettingsError,
    check_tls_settings,
    open_connection,
)
from imap2api.sync.credentials import refusal_text
from imap2api.validation import (
    A_PRIVATE_KEY,
    DESTINATION_FIELDS,
    NOT_PEM,
    PASSWORD_AGAIN,
    SMTP_DESTINATION_FIELDS,
    validate_server,
)
from tests.conftest import OAUTH2_CLIENT_ID
from tests.support.dovecot import _write_self_signed_cert
from tests.support.messages import make_message
from tests.support.smtp import SmtpServer
from tests.test_smtp_transport import _account, _failure, _send

# A Python bytes literal as str() of a list of bytes shows it (b'...'), not a name ending in "b" and a quote.
BYTES_LITERAL = re.compile(r"(?<![\w])b'")
SERVER = {"name": "Work", "host": "imap.example.com", "username": "u", "password": "p"}


def _refused(account: ImapAccount, **options: float) -> SyncFailed:
    """The SyncFailed open_connection raises for ``account``."""
    with pytest.raises(SyncFailed) as raised:
        open_connection(account, **options)
    return raised.value


def _pem(path: Path) -> str:
    """A certificate file's text."""
    return path.read_text("ascii")


def _other_certificate(tmp_path: Path) -> Path:
    """A self-signed certificate no server here presents."""
    cert = tmp_path / "other.pem"
    _write_self_signed_cert(cert, tmp_path / "other.key")
    return cert


# --- a self-signed server: trusted per server, the failure naming the fix ------------------------------


def test_a_self_signed_server_syncs_once_its_certificate_is_trusted(mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "imap_ca_file", None)  # only the system CAs: Dovecot's is self-signed
    mirror.deliver(make_message(subject="self-signed"))
    refused = mirror.sync()
    assert (refused.status, refused.error_code) == ("error", "IMAP_TLS_FAILED")
    assert "self-signed certificate" in refused.error
    assert "tls_ca_cert" in refused.error and "tls_verify false" in refused.error

    mirror.configure(tls_ca_cert=_pem(mirror.dovecot.ca_cert_path))
    assert mirror.sync().status == "success"
    assert [email.subject for email in mirror.emails()] == ["self-signed"]


def test_the_ca_file_adds_to_the_system_cas_and_the_servers_certificate(
    dovecot, user, tmp_path, monkeypatch
) -> None:
    # Dovecot's certificate stands for the system's CAs; another certificate is the CA file.
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.ca_cert_path))
    monkeypatch.setattr(settings, "imap_ca_file", str(_other_certificate(tmp_path)))
    open_connection(ImapAccount(dovecot.host, dovecot.ssl_port, user, "secret")).logout()

    monkeypatch.delenv("SSL_CERT_FILE")
    (tmp_path / "again").mkdir()
    cert = _other_certificate(tmp_path / "again")  # a new file: a new context
    monkeypatch.setattr(settings, "imap_ca_file", str(cert))
    trusted = ImapAccount(
        dovecot.host, dovecot.ssl_port, user, "secret", tls_ca_cert=_pem(dovecot.ca_cert_path)
    )
    open_connection(trusted).logout()


@contextmanager
def _tls_listener(tmp_path: Path, host: str) -> Iterator[tuple[int, str]]:
    """A TLS server on ``host`` presenting a certificate for localhost and 127.0.0.1: (port, its PEM)."""
    cert = _other_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, tmp_path / "other.key")
    listener = socket.create_server((host, 0))
    listener.settimeout(5)

    def handshake() -> None:
        with contextlib.suppress(OSError), listener.accept()[0] as sock:
            context.wrap_socket(sock, server_side=True).close()

    thread = threading.Thread(target=handshake, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], _pem(cert)
    finally:
        thread.join(5)
        listener.close()


def test_a_hostname_mismatch_says_so(tmp_path) -> None:
    # All of 127.0.0.0/8 is this host; the certificate names 127.0.0.1 alone.
    with _tls_listener(tmp_path, "127.0.0.2") as (port, pem):
        failure = _refused(ImapAccount("127.0.0.2", port, "u", "p", tls_ca_cert=pem))
    assert failure.code == "IMAP_TLS_FAILED"
    assert "certificate is not valid for '127.0.0.2'" in failure.message
    assert "enter as host a name the certificate is valid for" in failure.message
    assert "tls_ca_cert" not in failure.message  # trusting it would not help


def test_smtp_trusts_the_servers_certificate_too(smtp_server: SmtpServer, monkeypatch) -> None:
    monkeypatch.setattr(settings, "imap_ca_file", None)
    failure = _failure(_account(smtp_server))
    assert failure.code == "SMTP_TLS_FAILED" and "tls_ca_cert" in failure.message
    delivered = _send(_account(smtp_server, tls_ca_cert=_pem(smtp_server.ca_cert_path)))
    assert delivered.response.startswith("250 ")


# --- IMAP2API_IMAP_CA_FILE: a wrong path is a configuration error, not a network one -------------------


def test_a_missing_ca_file_is_a_configuration_error(dovecot, user, tmp_path, monkeypatch) -> None:
    missing = tmp_path / "nowhere.pem"
    monkeypatch.setattr(settings, "imap_ca_file", str(missing))
    with pytest.raises(TlsSettingsError, match=f"^IMAP2API_IMAP_CA_FILE={missing} does not exist$"):
        check_tls_settings()
    failure = _refused(ImapAccount(dovecot.host, dovecot.port, user, "secret", tls_mode="starttls"))
    assert failure.code == "IMAP_TLS_FAILED"
    assert failure.message.startswith(f"IMAP2API_IMAP_CA_FILE={missing} does not exist")

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    monkeypatch.setattr(settings, "imap_ca_file", str(garbage))
    with pytest.raises(TlsSettingsError, match="holds no usable PEM certificate"):
        check_tls_settings()

    monkeypatch.setattr(settings, "imap_ca_file", str(dovecot.ca_cert_path))
    check_tls_settings()
    monkeypatch.setattr(settings, "imap_ca_file", None)
    check_tls_settings()


def test_smtp_reports_a_missing_ca_file_as_such(smtp_server: SmtpServer, tmp_path, monkeypatch) -> None:
    missing = tmp_path / "nowhere.pem"
    monkeypatch.setattr(settings, "imap_ca_file", str(missing))
    failure = _failure(_account(smtp_server))
    assert failure.code == "SMTP_TLS_FAILED"
    assert f"IMAP2API_IMAP_CA_FILE={missing} does not exist" in failure.message


# --- the wrong TLS mode for the port ---------------------------------------------------------------------


def test_starttls_on_the_implicit_tls_port_says_so(dovecot, user, monkeypatch) -> None:
    monkeypatch.setattr(connection, "GREETING_WAIT_SECONDS", 0.5)  # the default timeout stays 30 s
    failure = _refused(ImapAccount(dovecot.host, dovecot.ssl_port, user, "secret", tls_mode="starttls"))
    assert (failure.code, failure.message) == (
        "IMAP_PROTOCOL_ERROR",
        f"{IMPLICIT_TLS_PORT} ({dovecot.host}:{dovecot.ssl_port})",
    )
    # Within a timeout shorter than the greeting wait: the same answer.
    account = ImapAccount(dovecot.host, dovecot.ssl_port, user, "secret", tls_mode="none")
    assert _refused(account, timeout=0.3).message.startswith(IMPLICIT_TLS_PORT)


def test_implicit_tls_on_the_plain_port_says_so(dovecot, user) -> None:
    failure = _refused(ImapAccount(dovecot.host, dovecot.port, user, "secret", tls_mode="ssl"))
    assert (failure.code, failure.message) == (
        "IMAP_TLS_FAILED",
        f"TLS handshake failed: {PLAIN_PORT} ({dovecot.host}:{dovecot.port})",
    )


class _SlowServer:
    """A plain IMAP server greeting after ``delay`` seconds (or never), refusing every login."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()

    def serve(self) -> None:
        """Accept until stopped, one thread per connection."""
        self._listener.settimeout(0.1)
        with self._listener:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                threading.Thread(target=self._talk, args=(sock,), daemon=True).start()

    def _talk(self, sock: socket.socket) -> None:
        """Greet late, then answer LOGIN with NO."""
        with sock:
            if self.delay is None or self._stop.wait(self.delay):
                self._stop.wait()
                return
            try:
                sock.sendall(b"* OK ready\r\n")
                for line in sock.makefile("rb"):
                    tag, command = [*line.split(maxsplit=2), b""][:2]
                    if command.upper() == b"CAPABILITY":  # imaplib asks, given a greeting without them
                        sock.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                    else:
                        sock.sendall(tag + b" NO [AUTHENTICATIONFAILED] not today\r\n")
            except OSError:
                return  # the client gave up on this connection

    def stop(self) -> None:
        """Stop accepting (the listener closes) and end every connection."""
        self._stop.set()


@contextmanager
def _slow_server(delay: float | None) -> Iterator[_SlowServer]:
    """A _SlowServer serving in a thread."""
    server = _SlowServer(delay)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(5)


def test_a_slow_greeting_is_still_waited_for(monkeypatch) -> None:
    monkeypatch.setattr(connection, "GREETING_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(connection, "TLS_PROBE_SECONDS", 0.2)
    with _slow_server(delay=0.8) as server:
        failure = _refused(ImapAccount("127.0.0.1", server.port, "u", "p", tls_mode="none"), timeout=5)
        assert failure.code == "IMAP_AUTH_FAILED"  # greeted, then refused: no TLS hint, no timeout
        assert failure.message.startswith("login failed for 'u': [AUTHENTICATIONFAILED] not today")
        assert server.connections == 3  # the short wait, the TLS probe, the full wait


def test_a_server_that_never_greets_times_out(monkeypatch) -> None:
    monkeypatch.setattr(connection, "GREETING_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(connection, "TLS_PROBE_SECONDS", 0.2)
    with _slow_server(delay=None) as server:
        failure = _refused(ImapAccount("127.0.0.1", server.port, "u", "p", tls_mode="starttls"), timeout=1)
        assert failure.code == "IMAP_TIMEOUT"


# --- login refusals are text --------------------------------------------------------------------------


def test_a_refused_login_reads_as_text(dovecot, user) -> None:
    failure = _refused(ImapAccount(dovecot.host, dovecot.port, user, "wrong", tls_mode="starttls"))
    assert failure.code == "IMAP_AUTH_FAILED"
    assert failure.message.startswith(f"login failed for {user!r}: [AUTHENTICATIONFAILED] ")
    assert not BYTES_LITERAL.search(failure.message)


def test_a_refused_token_reads_as_text(oauth2_dovecot, oauth2_server) -> None:
    # imaplib words a refused AUTHENTICATE as "AUTHENTICATE command error: NO [b'...']".
    user = oauth2_dovecot.add_user()
    other = oauth2_server.issue_tokens(oauth2_dovecot.add_user(), OAUTH2_CLIENT_ID)["access_token"]
    account = ImapAccount(
        oauth2_dovecot.host, oauth2_dovecot.port, user, "", tls_mode="starttls", bearer=lambda _: other
    )
    failure = _refused(account)
    assert failure.code == "IMAP_AUTH_FAILED"
    assert failure.message.startswith(f"login failed for {user!r}: ")
    assert not BYTES_LITERAL.search(failure.message) and "command error" not in failure.message


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (
            "AUTHENTICATE command error: NO [b'[AUTHENTICATIONFAILED] Authentication failed.']",
            "[AUTHENTICATIONFAILED] Authentication failed.",
        ),
        ("LOGIN command error: BAD [b'caf\\xc3\\xa9', b'x']", "café x"),
        ("[UNAVAILABLE] try later", "[UNAVAILABLE] try later"),
        ("LOGIN command error: NO [b'unterminated", "LOGIN command error: NO [b'unterminated"),
        ("LOGIN command error: NO [__import__('os')]", "LOGIN command error: NO [__import__('os')]"),
    ],
)
def test_imaplib_refusals_lose_their_bytes_reprs(message: str, text: str) -> None:
    assert refusal_text(message) == text


# --- validation: tls_ca_cert, hosts, default ports --------------------------------------------------------


def _errors(data: dict, current: dict | None = None) -> dict[str, list[str]]:
    """What validate_server refuses in ``data``."""
    with pytest.raises(ValidationFailed) as raised:
        validate_server(data, current=current)
    return raised.value.fields


def test_tls_ca_cert_must_be_pem_certificates(dovecot, tmp_path) -> None:
    pem = _pem(dovecot.ca_cert_path)
    two = pem + _pem(_other_certificate(tmp_path))
    assert validate_server({**SERVER, "tls_ca_cert": "  "})["tls_ca_cert"] == ""
    assert validate_server({**SERVER, "tls_ca_cert": f"# Dovecot\n{pem}\n\n"})["tls_ca_cert"] == pem
    assert (
        validate_server({**SERVER, "tls_ca_cert": "# a bundle\r\n" + two.replace("\n", "\r\n")})[
            "tls_ca_cert"
        ]
        == two
    )
    for bad in ("not a certificate", pem[:200], pem.replace("CERTIFICATE-----\n", "CERTIFICATE-----\n!", 1)):
        assert _errors({**SERVER, "tls_ca_cert": bad}) == {"tls_ca_cert": [NOT_PEM]}
    key = (tmp_path / "other.key").read_text()
    assert _errors({**SERVER, "tls_ca_cert": pem + key}) == {"tls_ca_cert": [A_PRIVATE_KEY]}
    assert _errors({**SERVER, "tls_ca_cert": pem * 200}) == {
        "tls_ca_cert": ["Ensure this field has no more than 100000 characters."]
    }
    assert (
        validate_server({**SERVER, "tls_ca_cert": None})["tls_ca_cert"] == ""
    )  # null on create: the default
    current = {**SERVER, "password_set": True, "tls_ca_cert": pem}
    assert _errors({"tls_ca_cert": None}, current) == {"tls_ca_cert": ["This field may not be null."]}


def test_changing_tls_ca_cert_needs_the_secret_again(client, auth, dovecot) -> None:
    assert "tls_ca_cert" in DESTINATION_FIELDS and "tls_ca_cert" in SMTP_DESTINATION_FIELDS
    assert "tls_ca_cert" in TOKEN_DESTINATION_FIELDS
    created = client.post("/api/imap-servers/", json=SERVER, headers=auth)
    assert created.status_code == 201 and created.json()["tls_ca_cert"] == ""
    url = f"/api/imap-servers/{created.json()['id']}/"
    pem = _pem(dovecot.ca_cert_path)
    refused = client.patch(url, json={"tls_ca_cert": pem}, headers=auth)
    assert refused.status_code == 400 and refused.json() == {"password": [PASSWORD_AGAIN]}
    assert "tls_ca_cert" in PASSWORD_AGAIN
    invalid = client.patch(url, json={"tls_ca_cert": "nope", "password": "p"}, headers=auth)
    assert invalid.status_code == 400 and invalid.json() == {"tls_ca_cert": [NOT_PEM]}

    changed = client.patch(url, json={"tls_ca_cert": pem, "password": "p"}, headers=auth)
    assert changed.status_code == 200 and changed.json()["tls_ca_cert"] == pem
    assert client.patch(url, json={"tls_ca_cert": f"\n{pem}"}, headers=auth).status_code == 200  # unchanged
    assert client.patch(url, json={"tls_ca_cert": ""}, headers=auth).status_code == 400


def test_the_ca_certificate_is_part_of_where_smtp_logs_in(dovecot) -> None:
    current = {**SERVER, "password_set": True, "smtp_host": "smtp.example.com", "tls_ca_cert": ""}
    pem = _pem(dovecot.ca_cert_path)
    assert "tls_ca_cert" in _errors({"tls_ca_cert": pem}, current)["password"][0]
    own = {**current, "smtp_password_set": True}
    errors = _errors({"tls_ca_cert": pem, "password": "p"}, own)
    assert list(errors) == ["smtp_password"] and "tls_ca_cert" in errors["smtp_password"][0]


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("imaps://imap.example.com", "without a scheme (imaps://)"),
        ("imap://imap.example.com/", "without a scheme (imaps://)"),
        ("imap.example.com/", "without a scheme (imaps://) or a path"),
        ("imap.example.com:993", "the port goes in the port field"),
    ],
)
def test_a_url_or_a_port_is_no_host(host: str, message: str) -> None:
    errors = _errors({**SERVER, "host": host})
    assert list(errors) == ["host"] and message in errors["host"][0]


@pytest.mark.parametrize(
    ("given", "port", "smtp_port"),
    [
        ({}, 993, 587),
        ({"use_ssl": False}, 143, 587),
        ({"tls_mode": "starttls"}, 143, 587),
        ({"tls_mode": "none"}, 143, 587),
        ({"use_ssl": True, "smtp_security": "ssl"}, 993, 465),
        ({"use_ssl": False, "port": 10143, "smtp_security": "none"}, 10143, 587),
        ({"tls_mode": "starttls", "port": None, "smtp_port": None}, 143, 587),
        ({"smtp_security": "ssl", "smtp_port": 2465}, 993, 2465),
    ],
)
def test_a_port_left_out_follows_the_tls_mode(given: dict, port: int, smtp_port: int) -> None:
    clean = validate_server({**SERVER, **given})
    assert (clean["port"], clean["smtp_port"]) == (port, smtp_port)


def test_an_update_keeps_the_port(client, auth) -> None:
    created = client.post("/api/imap-servers/", json={**SERVER, "use_ssl": False}, headers=auth).json()
    assert (created["port"], created["tls_mode"]) == (143, "starttls")
    url = f"/api/imap-servers/{created['id']}/"
    changed = client.patch(url, json={"use_ssl": True, "password": "p"}, headers=auth).json()
    assert (changed["port"], changed["tls_mode"]) == (143, "ssl")  # only a create picks the port
