"""The SMTP transport against a real server (aiosmtpd, tests/support/smtp.py): what is delivered, and
how each failure is classified, temporary or final."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest

from imap2api.config import settings
from imap2api.sending.smtp import Delivered, SmtpAccount, SmtpFailure, deliver
from tests.support.banner import BannerServer
from tests.support.smtp import SMTP_USERS, SmtpServer

USER, PASSWORD = next(iter(SMTP_USERS.items()))
SENDER = USER
TIMEOUT = 5.0


def _account(server: SmtpServer | BannerServer, security: str = "starttls", **changes: Any) -> SmtpAccount:
    """An account on ``server``, logged in as the fixture's user unless changed."""
    return replace(SmtpAccount(server.host, server.port, security, USER, PASSWORD), **changes)


def _message(subject: str = "Hello", to: str = "bob@example.test", body: str = "Hi Bob.\n") -> bytes:
    """A small message as the composer would hand it over: bytes with CRLF line endings."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, to, subject
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


def _send(
    account: SmtpAccount,
    recipients: list[str] | None = None,
    *,
    message: bytes | None = None,
    smtputf8: bool = False,
    timeout: float = TIMEOUT,
    deadline: float | None = None,
) -> Delivered:
    """deliver() with the usual envelope and message."""
    return deliver(
        account,
        envelope_from=SENDER,
        recipients=recipients or ["bob@example.test"],
        message=message or _message(),
        smtputf8=smtputf8,
        timeout=timeout,
        deadline=deadline,
    )


def _failure(account: SmtpAccount, recipients: list[str] | None = None, **options: Any) -> SmtpFailure:
    """The SmtpFailure deliver() raises, checked for what every failure promises."""
    with pytest.raises(SmtpFailure) as raised:
        _send(account, recipients, **options)
    failure = raised.value
    assert "\n" not in str(failure) and str(failure).endswith(f":{account.port})")
    assert failure.message == str(failure) and 0 < len(failure.reply) <= 500
    assert PASSWORD not in str(failure) and PASSWORD not in failure.reply
    return failure


@contextlib.contextmanager
def _server(**options: Any) -> Iterator[SmtpServer]:
    """A server of its own for the test, its certificate trusted."""
    with SmtpServer(**options) as server, server.trusted():
        yield server


@contextlib.contextmanager
def _dripping(banner: bytes) -> Iterator[tuple[str, int]]:
    """A server that sends ``banner`` and then one byte every 0.2 s, never ending the line."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.sendall(banner)
                while not stop.wait(0.2):
                    conn.sendall(b"x")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)


def test_starttls_login_and_delivery(smtp_server: SmtpServer) -> None:
    delivered = _send(_account(smtp_server), ["bob@example.test", "carol@example.test"])
    assert delivered.response.startswith("250 2.0.0 Ok: queued as") and delivered.refused == {}
    (received,) = smtp_server.wait_for(1)
    assert (received.mail_from, received.rcpt_tos, received.login) == (
        SENDER,
        ("bob@example.test", "carol@example.test"),
        USER,
    )
    parsed = email.message_from_bytes(received.data)
    assert (parsed["Subject"], parsed["To"], str(parsed.get_payload()).strip()) == (
        "Hello",
        "bob@example.test",
        "Hi Bob.",
    )


def test_implicit_tls_delivery(smtps_server: SmtpServer) -> None:
    delivered = _send(_account(smtps_server, "ssl"))
    assert delivered.response.startswith("250 ")
    assert [m.login for m in smtps_server.wait_for(1)] == [USER]


def test_line_endings_are_made_crlf_so_no_bare_lf_can_end_the_data(smtp_server: SmtpServer) -> None:
    smuggled = b"Subject: one\n\nfirst\n.\nMAIL FROM:<evil@example.test>\n.line\r\n"
    _send(_account(smtp_server), message=smuggled)
    (received,) = smtp_server.wait_for(1)
    assert received.data == b"Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@example.test>\r\n.line\r\n"


def test_a_wrong_password_is_final(smtp_server: SmtpServer) -> None:
    failure = _failure(_account(smtp_server, password="not-the-password"))
    assert (failure.code, failure.temporary) == ("SMTP_AUTH_FAILED", False)
    assert failure.reply.startswith("535 ") and smtp_server.messages == []


def test_a_server_echoing_the_password_does_not_get_it_into_the_failure(smtp_server: SmtpServer) -> None:
    smtp_server.fail_auth(f"535 5.7.8 Wrong password {PASSWORD} for {USER}")
    failure = _failure(_account(smtp_server))  # which checks that the password is nowhere
    assert failure.reply == f"535 5.7.8 Wrong password *** for {USER}"


def test_a_temporary_auth_failure_is_temporary(smtp_server: SmtpServer) -> None:
    smtp_server.fail_auth("454 4.7.0 Temporary authentication failure")
    failure = _failure(_account(smtp_server))
    assert (failure.code, failure.temporary, failure.reply) == (
        "SMTP_TEMPORARY",
        True,
        "454 4.7.0 Temporary authentication failure",
    )


def test_a_utf8_password_is_sent_with_auth_plain() -> None:
    with _server(users={"jürgen@example.test": "pässwörd"}) as server:
        _send(_account(server, username="jürgen@example.test", password="pässwörd"))
        assert [m.login for m in server.wait_for(1)] == ["jürgen@example.test"]


def test_a_451_is_temporary_and_the_next_attempt_succeeds(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, "451 4.3.0 Try again later")
    failure = _failure(_account(smtp_server))
    assert (failure.code, failure.temporary, failure.reply) == (
        "SMTP_TEMPORARY",
        True,
        "451 4.3.0 Try again later",
    )
    assert smtp_server.messages == []
    assert _send(_account(smtp_server)).response.startswith("250 ")
    assert len(smtp_server.wait_for(1)) == 1


def test_a_5xx_at_data_is_final_with_the_servers_text(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, "554 5.7.1 Message rejected as spam")
    failure = _failure(_account(smtp_server))
    assert (failure.code, failure.temporary) == ("SMTP_REJECTED", False)
    assert failure.reply == "554 5.7.1 Message rejected as spam"
    assert "554 5.7.1 Message rejected as spam" in str(failure)


def test_one_refused_recipient_of_two_is_reported_with_the_delivery(smtp_server: SmtpServer) -> None:
    smtp_server.reject_recipient("nobody@example.test")
    delivered = _send(_account(smtp_server), ["nobody@example.test", "bob@example.test"])
    assert delivered.refused == {"nobody@example.test": "550 5.1.1 No such user"}
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [("bob@example.test",)]


def test_every_recipient_refused_is_final_unless_one_refusal_is_temporary(smtp_server: SmtpServer) -> None:
    smtp_server.reject_recipient("nobody@example.test")
    smtp_server.reject_recipient("gone@example.test", "551 5.1.6 User has moved")
    final = _failure(_account(smtp_server), ["nobody@example.test", "gone@example.test"])
    assert (final.code, final.temporary) == ("SMTP_REJECTED", False)
    assert "nobody@example.test: 550 5.1.1 No such user" in final.reply and "551 5.1.6" in final.reply

    smtp_server.reject_recipient("full@example.test", "452 4.2.2 Mailbox full")
    temporary = _failure(_account(smtp_server), ["nobody@example.test", "full@example.test"])
    assert (temporary.code, temporary.temporary) == ("SMTP_TEMPORARY", True)
    assert smtp_server.messages == []


def test_a_closed_port_is_a_temporary_connection_failure() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    account = SmtpAccount("127.0.0.1", port, "starttls", USER, PASSWORD)
    failure = _failure(account)
    assert (failure.code, failure.temporary) == ("SMTP_CONNECTION_FAILED", True)


def test_no_starttls_offered_is_final_and_the_password_is_never_sent() -> None:
    # A clear-text server that would even take the password: STARTTLS was asked for, so nothing is sent.
    with _server(tls="none", users=SMTP_USERS, auth_require_tls=False) as server:
        failure = _failure(_account(server, "starttls"))
        assert (failure.code, failure.temporary) == ("SMTP_STARTTLS_UNAVAILABLE", False)
        assert server.auth_attempts == [] and server.messages == []

        _send(_account(server, "none"))  # clear text when the owner chose it
        assert [m.login for m in server.wait_for(1)] == [USER]


def test_an_unverifiable_certificate_fails_unless_tls_verify_is_off(
    smtp_server: SmtpServer, smtps_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "imap_ca_file", None)  # the system CAs: the fixture's is self-signed
    for server, security in ((smtp_server, "starttls"), (smtps_server, "ssl")):
        failure = _failure(_account(server, security))
        assert (failure.code, failure.temporary) == ("SMTP_TLS_FAILED", False)
        assert server.auth_attempts == []
        assert _send(_account(server, security, tls_verify=False)).response.startswith("250 ")


def test_a_server_without_auth() -> None:
    with _server(tls="starttls", users=None) as server:
        failure = _failure(_account(server))
        assert (failure.code, failure.temporary) == ("SMTP_AUTH_UNAVAILABLE", False)
        _send(_account(server, auth=False))
        assert [m.login for m in server.wait_for(1)] == [None]


def test_a_message_bigger_than_size_is_final_before_mail_from() -> None:
    with _server(users=SMTP_USERS, size_limit=2000) as server:
        failure = _failure(_account(server), message=_message(body="x" * 3000))
        assert (failure.code, failure.temporary) == ("SMTP_MESSAGE_TOO_LARGE", False)
        small = _message()
        _send(_account(server), message=small)
        assert f"SIZE={len(small)}" in server.wait_for(1)[0].mail_options


def test_smtputf8_for_a_utf8_address() -> None:
    with _server(users=SMTP_USERS) as server:
        _send(_account(server), ["jürgen@exämple.test"], smtputf8=True)
        (received,) = server.wait_for(1)
        assert received.rcpt_tos == ("jürgen@exämple.test",)
        assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(received.mail_options)
    with _server(users=SMTP_USERS, smtputf8=False) as server:
        failure = _failure(_account(server), ["jürgen@exämple.test"])  # needed: no smtputf8=True required
        assert (failure.code, failure.temporary) == ("SMTPUTF8_UNSUPPORTED", False)


def test_a_dripping_server_is_cut_off_at_the_deadline() -> None:
    with _dripping(b"220 ") as (host, port):
        account = SmtpAccount(host, port, "starttls", USER, PASSWORD)
        failure = _failure(account, deadline=1)
    assert (failure.code, failure.temporary) == ("SMTP_TIMEOUT", True)


def test_a_silent_server_times_out() -> None:
    with BannerServer(b"220 ") as server:
        failure = _failure(SmtpAccount(server.host, server.port, "starttls", USER, PASSWORD), timeout=0.5)
    assert (failure.code, failure.temporary) == ("SMTP_TIMEOUT", True)


def test_a_server_that_is_not_smtp_is_not_quoted() -> None:
    with BannerServer(b"* OK [CAPABILITY IMAP4rev1] secret-internal-host ready\r\n") as server:
        failure = _failure(SmtpAccount(server.host, server.port, "starttls", USER, PASSWORD))
    assert (failure.code, failure.temporary) == ("SMTP_PROTOCOL_ERROR", False)
    assert "secret" not in str(failure) and "secret" not in failure.reply


def test_settings_that_cannot_be_sent_are_final_and_nothing_connects() -> None:
    with BannerServer(b"220 ready\r\n") as server:
        cases = {
            "SMTP_HOST_INVALID": SmtpAccount("bad host\n", server.port, "ssl", USER, PASSWORD),
            "SMTP_SECURITY_INVALID": SmtpAccount(server.host, server.port, "tls", USER, PASSWORD),
            "SMTP_CREDENTIALS_INVALID": SmtpAccount(server.host, server.port, "ssl", USER, "a\r\nb"),
        }
        for code, account in cases.items():
            failure = _failure(account)
            assert (failure.code, failure.temporary) == (code, False)
        bad_address = _failure(_account(server, "ssl"), ["bob@example.test>\r\nRCPT TO:<eve@example.test"])
        assert bad_address.code == "SMTP_ADDRESS_INVALID"
        assert server.connections == 0
