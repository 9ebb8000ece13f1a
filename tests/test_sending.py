"""Sending end to end: REST and GraphQL → outbox → the Dramatiq actor → a real SMTP server (aiosmtpd,
STARTTLS and implicit TLS, with AUTH) → the copy filed in Dovecot's Sent folder → the mirror.

The delivered bytes are parsed back and checked; what Dovecot holds is read back over IMAP.
"""

from __future__ import annotations

import base64
import email
import time
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlmodel import select

from imap2api.config import settings
from imap2api.crud import outbox as crud_outbox
from imap2api.db import session_scope
from imap2api.models import OutboxMessage, utcnow
from imap2api.sending.limits import forget_limiters
from imap2api.workers.sending import send_tick
from tests.conftest import Mirror
from tests.support.imap_proxy import ImapProxy, without_capabilities
from tests.support.messages import make_message
from tests.support.smtp import SMTP_USERS, SmtpServer

LOGIN, SMTP_PASSWORD = next(iter(SMTP_USERS.items()))
SENDER = "ann@example.test"
SEND = """mutation($input: SendEmailInput!, $key: String) {
  sendEmail(input: $input, idempotencyKey: $key) { replayed message { id status messageId subject to } } }"""
OUTBOX = "query($id: ID!) { outboxMessage(id: $id) { id status attempts errorCode sentCopy email } }"


def smtp_settings(server: SmtpServer, **overrides: Any) -> dict[str, Any]:
    """Server fields that send through the test SMTP server as its user."""
    fields = {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": server.tls,
        "smtp_username": LOGIN,
        "smtp_password": SMTP_PASSWORD,
        "email_address": SENDER,
        "display_name": "Ann Exämple",
    }
    return {**fields, **overrides}


@pytest.fixture()
def sender(mirror: Mirror, smtp_server: SmtpServer) -> Mirror:
    """A mirrored mailbox whose server sends through the STARTTLS SMTP server; one message in INBOX."""
    mirror.configure(**smtp_settings(smtp_server))
    mirror.deliver(
        make_message(subject="Lunch?", sender="bob@example.test", message_id="<lunch@example.test>")
    )
    mirror.sync()
    return mirror


@pytest.fixture(autouse=True)
def quick_retries() -> Any:
    """Retries after a fraction of a second (the schedule's shape is the unit tests' business), and a
    send rate nobody has spent yet."""
    saved = settings.send_retry_base_seconds, settings.send_rate_limit
    settings.send_retry_base_seconds = 0.2
    forget_limiters()  # user ids repeat from one database to the next
    yield
    settings.send_retry_base_seconds, settings.send_rate_limit = saved


def post_send(client, mirror: Mirror, body: dict[str, Any], **headers: str):
    """POST /api/emails/send/ as the mirror's owner, from its server."""
    return client.post(
        "/api/emails/send/",
        json={"imap_server": mirror.server_id, **body},
        headers={**mirror.headers, **headers},
    )


def settled(client, mirror: Mirror, outbox_id: int, *, copy: bool = True, timeout: float = 30) -> dict:
    """The outbox message once it is sent (and filed, with ``copy``), failed or cancelled."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/api/outbox/{outbox_id}/", headers=mirror.headers).json()
        final = answer["status"] in ("failed", "cancelled") or (
            answer["status"] == "sent" and (not copy or answer["sent_copy"] != "pending")
        )
        if final or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def delivered(server: SmtpServer) -> tuple[Any, EmailMessage]:
    """The one message the SMTP server took, and its bytes parsed."""
    (received,) = server.wait_for(1)
    return received, email.message_from_bytes(received.data, policy=policy.default)


def sent_folder(mirror: Mirror) -> list[tuple[bytes, list[bytes]]]:
    """(bytes, flags) of every message in the mailbox's Sent folder, over IMAP."""
    with mirror.imap() as imap:
        imap.select_folder("Sent", readonly=True)
        fetched = imap.fetch(imap.search(["ALL"]), ["RFC822", "FLAGS"])
    return [(data[b"RFC822"], list(data[b"FLAGS"])) for data in fetched.values()]


def test_a_message_is_sent_over_starttls_filed_in_sent_and_mirrored_once(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    photo = bytes(range(256)) * 40
    answer = post_send(
        client,
        sender,
        {
            "to": ["Zoë Müller <zoe@example.test>"],
            "cc": ["carl@example.test"],
            "bcc": ["hidden@example.test"],
            "subject": "Grüße aus Köln",
            "text": "Hallo Zoë,\nsee the photo.",
            "html": "<p>Hallo Zoë, see the photo.</p>",
            "attachments": [{"filename": "photo.bin", "content_base64": base64.b64encode(photo).decode()}],
        },
    )
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert queued["status"] in ("queued", "sending", "sent")
    assert queued["message_id"].startswith("<") and queued["message_id"].endswith("@example.test>")
    assert queued["bcc"] == ["hidden@example.test"] and queued["to"] == ["Zoë Müller <zoe@example.test>"]

    done = settled(client, sender, queued["id"])
    assert (done["status"], done["sent_copy"], done["attempts"]) == ("sent", "saved", 1), done
    assert done["smtp_response"].startswith("250")

    received, parsed = delivered(smtp_server)
    assert received.login == LOGIN
    assert received.mail_from == SENDER
    assert sorted(received.rcpt_tos) == ["carl@example.test", "hidden@example.test", "zoe@example.test"]
    assert "Bcc" not in parsed and b"hidden@example.test" not in received.data
    assert parsed["Subject"] == "Grüße aus Köln"
    assert parsed["From"].addresses[0].display_name == "Ann Exämple"
    assert parsed["To"].addresses[0].display_name == "Zoë Müller"
    assert parsed["Message-ID"] == queued["message_id"]
    assert parsed.get_body(("plain",)).get_content().startswith("Hallo Zoë")
    assert "Hallo Zoë" in parsed.get_body(("html",)).get_content()
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "photo.bin" and attachment.get_content() == photo
    assert received.data.isascii()  # 7-bit clean: names and subject RFC 2047, bodies encoded

    (copy,) = sent_folder(sender)
    assert b"\\Seen" in copy[1]
    assert b"Bcc: hidden@example.test" in copy[0]  # the sender's copy keeps who was Bcc'd
    (mirrored,) = sender.emails(folder="Sent")
    assert mirrored.message_id == queued["message_id"] and mirrored.seen
    assert done["email"] == mirrored.id
    (event,) = sender.events("email.sent")
    assert (event["outbox_message"], event["message_id"], event["to"]) == (
        queued["id"],
        queued["message_id"],
        ["Zoë Müller <zoe@example.test>"],
    )
    assert event["id"].startswith("evt_") and event["smtp_response"].startswith("250")  # no email "id"
    assert sender.events("email.received") == []  # the sender's own mail is not news
    sender.sync()
    assert len(sender.emails(folder="Sent")) == 1


def test_a_reply_threads_with_its_original_and_marks_it_answered(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    (original,) = sender.emails(folder="INBOX")
    variables = {
        "input": {"imapServer": str(sender.server_id), "replyToEmail": str(original.id), "text": "Yes!"}
    }
    answer = client.post("/graphql", json={"query": SEND, "variables": variables}, headers=sender.headers)
    message = answer.json()["data"]["sendEmail"]["message"]
    assert message["subject"] == "Re: Lunch?" and message["to"] == ["bob@example.test"]

    done = settled(client, sender, int(message["id"]))
    assert done["status"] == "sent", done
    _, parsed = delivered(smtp_server)
    assert parsed["In-Reply-To"] == "<lunch@example.test>"
    assert parsed["References"] == "<lunch@example.test>"
    assert parsed["Subject"] == "Re: Lunch?"

    (copy,) = sender.emails(folder="Sent")
    assert copy.thread_id == original.thread_id
    (answered,) = sender.emails(folder="INBOX")
    assert answered.answered  # \Answered set on the server, and mirrored
    with sender.imap() as imap:
        imap.select_folder("INBOX", readonly=True)
        (flags,) = imap.get_flags(imap.search(["ALL"])).values()
    assert b"\\Answered" in flags


def test_a_forward_attaches_the_original_or_inlines_it(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    (original,) = sender.emails(folder="INBOX")
    answer = post_send(
        client, sender, {"to": ["dan@example.test"], "forward_email": original.id, "text": "FYI"}
    )
    done = settled(client, sender, answer.json()["id"])
    assert done["status"] == "sent" and done["subject"] == "Fwd: Lunch?"
    _, parsed = delivered(smtp_server)
    attached = [part for part in parsed.walk() if part.get_content_type() == "message/rfc822"]
    assert len(attached) == 1
    assert attached[0].get_content()["Message-ID"] == "<lunch@example.test>"

    smtp_server.clear()
    answer = post_send(
        client, sender, {"to": ["dan@example.test"], "forward_email": original.id, "forward_inline": True}
    )
    assert settled(client, sender, answer.json()["id"])["status"] == "sent"
    _, parsed = delivered(smtp_server)
    text = parsed.get_body(("plain",)).get_content()
    assert "Forwarded message" in text and "Lunch?" in text
    assert not [part for part in parsed.walk() if part.get_content_type() == "message/rfc822"]


def test_implicit_tls_and_a_provider_that_files_sent_mail_itself(
    client, mirror: Mirror, smtps_server: SmtpServer
) -> None:
    mirror.configure(**smtp_settings(smtps_server), save_sent=False)
    mirror.sync()
    answer = post_send(client, mirror, {"to": ["eve@example.test"], "subject": "Over TLS", "text": "hi"})
    done = settled(client, mirror, answer.json()["id"])
    assert (done["status"], done["sent_copy"]) == ("sent", "by_provider"), done
    received, parsed = delivered(smtps_server)
    assert parsed["Subject"] == "Over TLS" and received.login == LOGIN
    assert sent_folder(mirror) == []  # nothing appended: the provider would have it twice


def test_a_refused_login_fails_for_good_with_the_servers_answer(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    sender.configure(smtp_password="wrong")
    answer = post_send(client, sender, {"to": ["bob@example.test"], "text": "hi"})
    done = settled(client, sender, answer.json()["id"])
    assert (done["status"], done["error_code"], done["attempts"]) == ("failed", "SMTP_AUTH_FAILED", 1), done
    assert done["smtp_response"].startswith("535")
    (event,) = sender.events("email.send_failed")
    assert (event["outbox_message"], event["error_code"]) == (done["id"], "SMTP_AUTH_FAILED")
    assert smtp_server.messages == [] and sent_folder(sender) == []


def test_a_temporary_failure_is_retried_until_the_message_goes(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    smtp_server.fail_next(2, "451 4.3.0 Try again later")
    answer = post_send(client, sender, {"to": ["bob@example.test"], "text": "third time lucky"})
    done = settled(client, sender, answer.json()["id"])
    assert (done["status"], done["attempts"], done["error"]) == ("sent", 3, ""), done
    _, parsed = delivered(smtp_server)
    assert parsed.get_body(("plain",)).get_content().strip() == "third time lucky"
    assert len(sender.events("email.sent")) == 1 and sender.events("email.send_failed") == []


def test_a_permanent_refusal_is_final(client, sender: Mirror, smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, "554 5.7.1 Message rejected as spam")
    answer = post_send(client, sender, {"to": ["bob@example.test"], "text": "buy now"})
    done = settled(client, sender, answer.json()["id"])
    assert (done["status"], done["error_code"]) == ("failed", "SMTP_REJECTED"), done
    assert "rejected as spam" in done["smtp_response"]


def test_one_refused_recipient_does_not_stop_the_others(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    smtp_server.reject_recipient("gone@example.test")
    answer = post_send(client, sender, {"to": ["bob@example.test", "gone@example.test"], "text": "hi"})
    done = settled(client, sender, answer.json()["id"])
    assert (
        done["status"] == "sent" and len(done["refused"]) == 1 and "gone@example.test" in done["refused"][0]
    )
    received, _ = delivered(smtp_server)
    assert received.rcpt_tos == ("bob@example.test",)


def test_the_same_idempotency_key_sends_once(client, sender: Mirror, smtp_server: SmtpServer) -> None:
    body = {"to": ["bob@example.test"], "text": "once"}
    first = post_send(client, sender, body, **{"Idempotency-Key": "order-42"})
    again = post_send(client, sender, body, **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    other = post_send(client, sender, {**body, "text": "twice?"}, **{"Idempotency-Key": "order-42"})
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    settled(client, sender, first.json()["id"])
    assert len(smtp_server.wait_for(1)) == 1
    time.sleep(0.3)
    assert len(smtp_server.messages) == 1


def test_bounds_answer_clear_4xx_and_queue_nothing(client, sender: Mirror, smtp_server: SmtpServer) -> None:
    many = [f"r{n}@example.test" for n in range(settings.send_max_recipients + 1)]
    assert post_send(client, sender, {"to": many, "text": "x"}).status_code == 400
    bad = post_send(client, sender, {"to": ["bob@example.test\r\nBcc: x@evil.test"], "text": "x"})
    assert bad.status_code == 400 and "to" in bad.json()
    injected = post_send(client, sender, {"to": ["bob@example.test"], "subject": "a\r\nBcc: x@evil.test"})
    assert injected.status_code == 400 and "subject" in injected.json()
    nobody = post_send(client, sender, {"text": "to whom?"})
    assert nobody.status_code == 400 and "to" in nobody.json()
    broken = post_send(
        client, sender, {"to": ["b@example.test"], "attachments": [{"filename": "a", "content_base64": "!!"}]}
    )
    assert broken.status_code == 400 and "attachments" in broken.json()
    saved = settings.send_max_message_bytes
    settings.send_max_message_bytes = 50_000
    try:
        big = base64.b64encode(b"x" * 60_000).decode()
        large = post_send(
            client,
            sender,
            {"to": ["b@example.test"], "attachments": [{"filename": "a", "content_base64": big}]},
        )
    finally:
        settings.send_max_message_bytes = saved
    assert large.status_code == 413 and large.json()["code"] == "MESSAGE_TOO_LARGE"
    settings.send_rate_limit = "1/hour"
    assert post_send(client, sender, {"to": ["b@example.test"], "text": "1"}).status_code == 202
    throttled = post_send(client, sender, {"to": ["b@example.test"], "text": "2"})
    assert throttled.status_code == 429 and throttled.json()["code"] == "SEND_THROTTLED"
    assert int(throttled.headers["retry-after"]) > 0
    with session_scope() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.imap_server_id == sender.server_id))
        assert len(rows.all()) == 1


def test_a_server_without_smtp_cannot_send_and_others_cannot_send_from_it(
    client, mirror: Mirror, make_user
) -> None:
    answer = post_send(client, mirror, {"to": ["bob@example.test"], "text": "x"})
    assert answer.status_code == 400 and "SMTP" in answer.json()["imap_server"][0]
    stranger = {"Authorization": f"Token {make_user()[2]}"}
    body = {"imap_server": mirror.server_id, "to": ["bob@example.test"], "text": "x"}
    foreign = client.post("/api/emails/send/", json=body, headers=stranger)
    assert foreign.status_code == 400 and "imap_server" in foreign.json()
    assert client.post("/api/emails/send/", json=body).status_code == 401


def test_a_queued_message_can_be_cancelled_and_only_then(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    settings.send_retry_base_seconds = 3600
    smtp_server.fail_next(1, "451 4.3.0 Later")
    queued = post_send(client, sender, {"to": ["bob@example.test"], "text": "maybe"}).json()
    deadline = time.monotonic() + 20
    while client.get(f"/api/outbox/{queued['id']}/", headers=sender.headers).json()["attempts"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    waiting = settled(client, sender, queued["id"], timeout=1)
    assert (waiting["status"], waiting["error_code"]) == ("queued", "SMTP_TEMPORARY")
    assert waiting["next_attempt_at"] is not None
    cancelled = client.post(f"/api/outbox/{queued['id']}/cancel/", headers=sender.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/outbox/{queued['id']}/cancel/", headers=sender.headers)
    assert again.status_code == 409 and again.json()["code"] == "NOT_CANCELLABLE"
    listed = client.get("/api/outbox/?status=cancelled", headers=sender.headers).json()
    assert [item["id"] for item in listed["results"]] == [queued["id"]]
    assert client.get("/api/outbox/?status=nope", headers=sender.headers).status_code == 400


def test_a_big_attachment_goes_as_multipart_upload(client, sender: Mirror, smtp_server: SmtpServer) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: past MAX_REQUEST_BYTES, which other requests keep
    answer = client.post(
        "/api/emails/send/",
        data={
            "imap_server": str(sender.server_id),
            "to": ["bob@example.test", "carl@example.test"],
            "text": "big",
        },
        files={"attachments": ("big.bin", data, "application/octet-stream")},
        headers=sender.headers,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["to"] == ["bob@example.test", "carl@example.test"]
    assert settled(client, sender, answer.json()["id"])["status"] == "sent"
    _, parsed = delivered(smtp_server)
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content() == data
    elsewhere = client.post("/api/webhooks/", content=b"x" * (2 * 1024 * 1024), headers=sender.headers)
    assert elsewhere.status_code == 413


def test_a_message_whose_worker_died_mid_send_is_taken_over(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    settings.send_rate_limit = "100/hour"
    queued = post_send(client, sender, {"to": ["bob@example.test"], "text": "again"}).json()
    settled(client, sender, queued["id"])
    smtp_server.clear()
    with session_scope() as session:  # as a worker killed after its claim leaves it
        row = crud_outbox.get_message(session, owner_id=None, outbox_id=queued["id"])
        row.status, row.sent_copy, row.raw = "sending", "pending", row.raw or _raw_of(sender)
        row.lease_expires_at = utcnow()
        session.add(row)
    send_tick()
    done = settled(client, sender, queued["id"])
    assert done["status"] == "sent" and done["attempts"] == 2
    assert len(smtp_server.wait_for(1)) == 1


def _raw_of(mirror: Mirror) -> bytes:
    """The bytes of the message in the mailbox's Sent folder."""
    ((raw, _),) = sent_folder(mirror)
    return raw


def test_a_non_ascii_address_goes_with_smtputf8(client, sender: Mirror, smtp_server: SmtpServer) -> None:
    answer = post_send(
        client, sender, {"to": ["Zoë <zoë@exämple.test>"], "subject": "Grüße", "text": "Hallo"}
    )
    assert answer.status_code == 202, answer.text
    done = settled(client, sender, answer.json()["id"])
    assert (done["status"], done["sent_copy"]) == ("sent", "saved"), done
    received, _ = delivered(smtp_server)
    assert "SMTPUTF8" in received.mail_options
    assert received.rcpt_tos == ("zoë@exämple.test",)  # RFC 6531: the whole address in UTF-8
    parsed = email.message_from_string(received.data.decode("utf-8"), policy=policy.default)  # RFC 6532
    assert parsed["To"].addresses[0].username == "zoë"
    (copy,) = sender.emails(folder="Sent")
    assert copy.subject == "Grüße"


def test_an_inline_image_uploaded_as_multipart_is_shown_by_cid(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    answer = client.post(
        "/api/emails/send/",
        data={
            "imap_server": str(sender.server_id),
            "to": "bob@example.test",
            "html": '<img src="cid:logo.png">',
        },
        files={"inline": ("logo.png", png, "image/png")},
        headers=sender.headers,
    )
    assert answer.status_code == 202, answer.text
    assert settled(client, sender, answer.json()["id"])["status"] == "sent"
    _, parsed = delivered(smtp_server)
    related = next(part for part in parsed.walk() if part.get_content_type() == "multipart/related")
    image = next(part for part in related.iter_parts() if part.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo.png>" and image.get_content() == png


def plain_imap_server(line: bytes) -> bytes:
    """A server without UIDPLUS and SPECIAL-USE: no APPENDUID, no \\Sent flag on its Sent folder."""
    line = without_capabilities(b"UIDPLUS", b"SPECIAL-USE")(line)
    if line.startswith(b"* LIST") or line.startswith(b"* LSUB"):
        line = line.replace(b"\\Sent ", b"").replace(b" \\Sent", b"").replace(b"\\Sent", b"")
    return line


def test_the_copy_is_filed_by_name_on_a_server_without_special_use_or_uidplus(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    with ImapProxy(sender.dovecot.host, sender.dovecot.port, plain_imap_server) as proxy:
        sender.configure(host=proxy.host, port=proxy.port, tls_mode="none", password="secret")
        answer = post_send(client, sender, {"to": ["bob@example.test"], "text": "filed by name"})
        done = settled(client, sender, answer.json()["id"])
        assert any(text.startswith("APPEND") for text in proxy.texts())
    assert (done["status"], done["sent_copy"]) == ("sent", "saved"), done
    (copy,) = sender.emails(folder="Sent")
    assert done["email"] == copy.id


def test_a_message_deferred_past_the_retry_span_fails(
    client, sender: Mirror, smtp_server: SmtpServer
) -> None:
    # Not a span of wall time the first attempt must fit in (a loaded machine overran 1 s): once the
    # first attempt is deferred, the message is made older than the span, so the next one fails.
    saved = settings.send_retry_span_seconds
    settings.send_retry_span_seconds = 3600.0
    try:
        smtp_server.fail_next(100, "421 4.7.0 Try again later")
        answer = post_send(client, sender, {"to": ["bob@example.test"], "text": "never"})
        outbox_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = client.get(f"/api/outbox/{outbox_id}/", headers=sender.headers).json()
            if state["attempts"] >= 1 and state["status"] == "queued":
                break
            time.sleep(0.05)
        with session_scope() as session:
            row = session.get(OutboxMessage, outbox_id)
            assert row is not None
            row.created_at = row.created_at - timedelta(seconds=settings.send_retry_span_seconds)
        done = settled(client, sender, outbox_id)
    finally:
        settings.send_retry_span_seconds = saved
    assert (done["status"], done["error_code"]) == ("failed", "SMTP_TEMPORARY"), done
    assert done["attempts"] >= 2 and done["next_attempt_at"] is None
    (event,) = sender.events("email.send_failed")
    assert event["outbox_message"] == done["id"] and "421" in event["smtp_response"]
