"""parse_message over real-world messages in IMAP2API_CORPUS_DIR; skipped without it, except in CI."""

from __future__ import annotations

import email
import mailbox
import os
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest

from imap2api.mail import ParsedMessage, parse_message

CORPUS_ENV = "IMAP2API_CORPUS_DIR"
# Files holding several messages in mbox format; every other file is one message.
MBOX_FILES = {"hyperkitty/non-ascii-headers.txt", "notmuch/indexing/mbox-attachment.eml"}
IN_CI = os.environ.get("CI", "").strip().lower() == "true"
_configured = os.environ.get(CORPUS_ENV, "").strip()
CORPUS = Path(_configured) if _configured else None
AVAILABLE = CORPUS is not None and CORPUS.is_dir()

if CORPUS is None and not IN_CI:
    pytest.skip(f"{CORPUS_ENV} is not set", allow_module_level=True)


def test_corpus_is_available() -> None:
    """In CI (or when set at all) the corpus must be there: a silent skip would hide the test."""
    assert AVAILABLE, f"{CORPUS_ENV}={_configured!r} is not a directory (CI={os.environ.get('CI')!r})"
    assert MESSAGE_IDS, f"no messages under {CORPUS}"


def _message_ids() -> list[str]:
    """One id per message: the file's path relative to the corpus, plus '#key' inside mbox files."""
    if not AVAILABLE:
        return []
    assert CORPUS is not None
    ids = []
    for path in sorted(CORPUS.rglob("*")):
        relative = path.relative_to(CORPUS).as_posix()
        if not path.is_file() or path.name == "README.md":
            continue
        if relative in MBOX_FILES:
            box = mailbox.mbox(path, create=False)
            ids += [f"{relative}#{key}" for key in box.iterkeys()]
        else:
            ids.append(relative)
    return ids


MESSAGE_IDS = _message_ids()


def load(message_id: str) -> bytes:
    """The raw bytes of one corpus message."""
    assert CORPUS is not None
    relative, _, key = message_id.partition("#")
    if key:
        return mailbox.mbox(CORPUS / relative, create=False).get_bytes(int(key))
    return (CORPUS / relative).read_bytes()


def has_plain_text(raw: bytes) -> bool:
    """Independent check: a non-attachment text/plain part outside forwarded messages has text in it."""
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[-1]
    try:
        message = email.message_from_bytes(raw)
    except Exception:  # unparseable by the stdlib: nothing to compare against
        return False
    stack: list[Message] = [message]
    while stack:
        part = stack.pop()
        if part.get_content_maintype() == "message":
            continue  # forwarded mail does not make the outer body
        if part.is_multipart():
            stack.extend(part.get_payload())
            continue
        if part.get_content_type() != "text/plain" or part.get_content_disposition() == "attachment":
            continue
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:
            continue
        if payload.replace(b"\x00", b"").strip():
            return True
    return False


@pytest.mark.parametrize("message_id", MESSAGE_IDS)
def test_corpus_message(message_id: str) -> None:
    raw = load(message_id)
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    for name in (
        "message_id",
        "in_reply_to",
        "subject",
        "sender",
        "sender_name",
        "recipient",
        "recipient_names",
        "cc",
        "body_text",
        "body_html",
    ):
        value = getattr(parsed, name)
        assert isinstance(value, str), name
        assert "\x00" not in value, name
        value.encode("utf-8")  # no lone surrogates: PostgreSQL must be able to store it
    assert all(ref.startswith("<") and ref.endswith(">") for ref in parsed.references)
    if parsed.date is not None:
        assert parsed.date.utcoffset() == timedelta(0)
        assert datetime(1970, 1, 1, tzinfo=UTC) <= parsed.date
        assert parsed.date <= datetime.now(UTC) + timedelta(days=366)
    for attachment in parsed.attachments:
        assert attachment.size >= 0
        assert attachment.content_type == attachment.content_type.lower() and "/" in attachment.content_type
        assert attachment.filename is None or (attachment.filename and "\x00" not in attachment.filename)
    assert parsed.size == len(raw)
    if has_plain_text(raw):
        assert parsed.body_text.strip(), "a text/plain part with text, but no body_text"


def parsed(message_id: str) -> ParsedMessage:
    """A parsed corpus message; skipped when the corpus lacks it."""
    if message_id not in MESSAGE_IDS:
        pytest.skip(f"{message_id} is not in this corpus")
    return parse_message(load(message_id))


def test_koi8r_attachment_names() -> None:
    message = parsed("django-mailbox/message_with_koi8r_filename_attachments.eml")
    assert message.subject == "Предложения от НИУ ВШЭ на 2016 год"
    assert message.sender_name == "Савостенок Ольга Святославовна"
    # Sizes computed from the base64 agree with the senders' own size= parameters.
    assert [(a.filename, a.content_type, a.size) for a in message.attachments] == [
        ("Пакет предложений HSE Career Fair 8 апреля 2016.pdf", "application/pdf", 545826),
        ("Ведомости.pdf", "application/pdf", 503828),
        (
            "Пакет предложений 2016.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            1890446,
        ),
    ]
    assert message.body_text and message.body_html


def test_rfc2231_utf8_attachment_names() -> None:
    message = parsed("django-mailbox/message_with_utf8_attachment.eml")
    assert message.subject == "Odpowiedź od burmistrza na wniosek stowarzyszenia"
    assert [a.filename for a in message.attachments] == ["piłkochwyty.jpg", "odpowiedź Burmistrza.jpg"]


def test_raw_utf8_attachment_name() -> None:
    message = parsed("django-mailbox/message_with_not_decoded_attachment_header.eml")
    assert [a.filename for a in message.attachments] == ["ð̞oβ̞le.png"]


def test_cpython_digest_and_delivery_report() -> None:
    digest = parsed("cpython-test_email/msg_02.txt")
    assert digest.subject == "Ppp digest, Vol 1 #2 - 5 msgs"
    assert digest.body_text.startswith("Send Ppp mailing list submissions to\n")
    assert [a.filename for a in digest.attachments][:1] == ["[Ppp] testing #1.eml"]
    assert {a.content_type for a in digest.attachments} == {"message/rfc822"}
    report = parsed("cpython-test_email/msg_16.txt")
    assert report.subject == "Delivery Notification: Delivery has failed"
    assert (report.sender_name, report.sender) == ("Internet Mail Delivery", "postmaster@ucla.edu")
    assert [a.content_type for a in report.attachments] == ["message/delivery-status", "message/rfc822"]


def test_cpython_mixed_text_parts_are_concatenated() -> None:
    message = parsed("cpython-test_email/msg_10.txt")
    assert message.body_text == (
        "This is a 7bit encoded message.\n\nThis is a Base64 encoded message.\n"
        "This is a Base64 encoded message.\n\nThis has no Content-Transfer-Encoding: header.\n"
    )
    assert message.body_html == "¡This is a Quoted Printable encoded message!\n"
    assert message.date == datetime(2001, 4, 20, 23, 35, 2, tzinfo=UTC)


def test_koi8r_subject_and_name_only_sender() -> None:
    message = parsed("mailman/bad_email.eml")
    assert message.subject == "P_@_С_C_Ы_Л_K_И"
    assert (message.sender_name, message.sender) == ("Рекреативное агентство", "")


def test_utf7_body() -> None:
    message = parsed("mailman/ascii_in_utf7.eml")
    assert "> On 3/1/19 5:00 AM, Jim X via Mailman-cabal wrote:" in message.body_text


def test_headers_in_mbox_archive() -> None:
    message = parsed("hyperkitty/non-ascii-headers.txt#1")
    assert message.sender_name == "Vít Ondruch"
    assert message.message_id == "<4FFC1C09.6030907@redhat.com>"


def test_bad_dates() -> None:
    # "-3000" is no valid offset: the time is kept as UTC.
    expected = datetime(1999, 11, 30, 23, 56, 33, tzinfo=UTC)
    assert parsed("hyperkitty/bad_date_tz.txt").date == expected
    assert parsed("hyperkitty/non-ascii-date-header.txt").date is None


def test_threading_chain() -> None:
    message = parsed("notmuch/threading/parent-priority/cur/grand-child")
    assert message.message_id == "<B01-grand-child@example.org>"
    assert message.in_reply_to == "<B01-child@example.org>"
    # Debbugs writes References oldest last; they are kept as written.
    assert message.references == ["<B01-child@example.org>", "<B00-root@example.org>"]


def test_unknown_charset_html() -> None:
    message = parsed("hyperkitty/unknown-charset.txt")
    assert message.body_text == ""
    assert "Hi Mailman-cabal," in message.body_html
