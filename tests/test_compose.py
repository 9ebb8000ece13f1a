"""Composing outgoing mail (imap2api.mail.compose): each message is parsed back, by the stdlib and by ours."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser, Parser
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from imap2api.mail import parse_message
from imap2api.mail.compose import (
    MAX_REFERENCES,
    Address,
    Composed,
    ComposeError,
    Draft,
    Upload,
    compose,
    forward_subject,
    parse_address,
    reply_subject,
    reply_threading,
    without_bcc,
)

MESSAGES = Path(__file__).parent / "messages"
NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
BINARY = bytes(range(256)) * 40 + b"\r\n\n\r\x00\xff"
ORIGINAL = (
    b"From: Ann Example <ann@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Cc: Cy <cy@example.com>\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <orig-1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b'Content-Type: multipart/alternative; boundary="b2"\r\n'
    b"\r\n"
    b"--b2\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"The figures are attached.\r\n"
    b"--b2\r\n"
    b'Content-Type: multipart/related; boundary="b3"\r\n'
    b"\r\n"
    b"--b3\r\n"
    b"Content-Type: text/html; charset=us-ascii\r\n"
    b"\r\n"
    b"<html><head><style>p {color: red}</style></head><body>"
    b'<p>The <b>figures</b> are attached.</p><img src="cid:chart@example.com"></body></html>\r\n'
    b"--b3\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <chart@example.com>\r\n"
    b"\r\n" + base64.encodebytes(PNG).replace(b"\n", b"\r\n") + b"--b3--\r\n"
    b"--b2--\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pdf; name="q1.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="q1.pdf"\r\n'
    b"\r\n" + base64.encodebytes(BINARY).replace(b"\n", b"\r\n") + b"--b1--\r\n"
)


def addr(value: str, field: str = "to") -> Address:
    """A parsed address."""
    return parse_address(value, field=field)


ME = Address("Me Myself", "me@example.org")
BOB = Address("Bob", "bob@example.com")


def assert_wire_safe(composed: Composed) -> None:
    """CRLF line ends only, no line over 998 octets, 7-bit bodies, ASCII headers unless SMTPUTF8."""
    raw = composed.raw
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r"), "bare CR or LF"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body.isascii() and b"\x00" not in body
    assert head.isascii() or composed.smtputf8


def build(**fields: object) -> Composed:
    """Compose a draft (sender and a recipient filled in unless given), checked for the wire."""
    fields.setdefault("sender", ME)
    if not any(fields.get(name) for name in ("to", "cc", "bcc")):
        fields["to"] = (BOB,)
    composed = compose(Draft(**fields), message_id_domain="mail.example.org", now=NOW)  # type: ignore[arg-type]
    assert_wire_safe(composed)
    return composed


def parsed(raw: bytes) -> EmailMessage:
    """The message as the stdlib reads it."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def content(part: MIMEPart) -> Any:
    """A part's decoded content; text with LF line ends (the stdlib keeps a 7bit part's CRLF)."""
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def tree(message: MIMEPart) -> list[str]:
    """The content types of the MIME tree in document order."""
    return [part.get_content_type() for part in message.walk()]


# --- a message, part by part ----------------------------------------------------------------------


def test_plain_text() -> None:
    composed = build(to=(BOB,), subject="Hello", text="Hi Bob,\n\nsee you.\n")
    message = parsed(composed.raw)
    assert tree(message) == ["text/plain"]
    assert message["From"] == "Me Myself <me@example.org>"
    assert message["To"] == "Bob <bob@example.com>"
    assert "Cc" not in message and "Bcc" not in message and "Reply-To" not in message
    assert message["Subject"] == "Hello"
    assert message["Date"] == format_datetime(NOW.replace(microsecond=0)) == "Wed, 01 May 2024 12:30:15 +0200"
    assert message["MIME-Version"] == "1.0"
    assert message["User-Agent"] == "imap2api"
    assert message["Message-ID"] == composed.message_id
    assert message.get_content_charset() == "utf-8"
    assert message["Content-Transfer-Encoding"] == "7bit"
    assert content(message) == "Hi Bob,\n\nsee you.\n"
    assert b"Hi Bob,\r\n\r\nsee you.\r\n" in composed.raw
    assert composed.envelope_from == "me@example.org"
    assert composed.recipients == ("bob@example.com",)
    assert composed.smtputf8 is False


def test_message_id_uses_the_given_domain_and_is_unique() -> None:
    first, second = build(text="a"), build(text="a")
    assert re.fullmatch(r"<[0-9a-f]{32}@mail\.example\.org>", first.message_id)
    assert first.message_id != second.message_id
    other = compose(Draft(sender=ME, to=(BOB,)), message_id_domain="localhost", now=NOW)
    assert other.message_id.endswith("@localhost>")


def test_non_ascii_text_is_quoted_printable_and_line_ends_are_normalised() -> None:
    text = "Grüße aus Köln\r\nzweite Zeile\rdritte\n" + "lang " * 100 + "\x00\ud800"
    composed = build(text=text)
    message = parsed(composed.raw)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    decoded = content(message)
    assert decoded.startswith("Grüße aus Köln\nzweite Zeile\ndritte\nlang lang")
    assert "\x00" not in decoded and "\ufffd" in decoded  # NUL dropped, lone surrogate replaced


def test_html_only_gets_a_text_alternative() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<h1>Welcome</h1><p>Hello&nbsp;<b>there</b>, read <a href='https://example.com/x'>the docs</a>.</p>"
        "<ul><li>one</li><li>two</li></ul><script>alert(1)</script><p>Bye</p></body></html>"
    )
    message = parsed(build(html=html).raw)
    assert tree(message) == ["multipart/alternative", "text/plain", "text/html"]
    text_part, html_part = message.iter_parts()
    text = content(text_part)
    assert "Welcome" in text and "Hello there, read the docs <https://example.com/x>." in text
    assert "- one\n- two" in text and "Bye" in text
    assert "alert" not in text and "color" not in text and "<" not in text.replace("<https", "")
    assert content(html_part).rstrip("\n") == html


def test_text_and_html_alternative() -> None:
    composed = build(text="Plain words", html="<p>Rich <i>words</i></p>")
    message = parsed(composed.raw)
    assert tree(message) == ["multipart/alternative", "text/plain", "text/html"]
    text_part, html_part = message.iter_parts()
    assert content(text_part) == "Plain words\n"
    assert content(html_part) == "<p>Rich <i>words</i></p>\n"
    ours = parse_message(composed.raw)
    assert ours.body_text == "Plain words\n"
    assert ours.body_html == "<p>Rich <i>words</i></p>\n"


def test_inline_cid_image_makes_html_related() -> None:
    composed = build(
        text="Logo below",
        html='<p>Logo: <img src="cid:logo@example.org"></p>',
        attachments=(Upload("logo.png", "image/png", PNG, content_id="<logo@example.org>"),),
    )
    message = parsed(composed.raw)
    assert tree(message) == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    related = list(message.iter_parts())[1]
    assert related.get_param("type") == "text/html"
    html_part, image = related.iter_parts()
    assert image["Content-ID"] == "<logo@example.org>"
    assert image.get_content_disposition() == "inline"
    assert image.get_filename() == "logo.png"
    assert content(image) == PNG
    ours = parse_message(composed.raw)
    assert [(a.filename, a.content_id, a.inline) for a in ours.attachments] == [
        ("logo.png", "<logo@example.org>", True)
    ]
    assert ours.has_attachments is False
    assert 'src="cid:logo@example.org"' in ours.body_html


def test_inline_image_without_html_is_a_plain_attachment() -> None:
    message = parsed(build(text="no html", attachments=(Upload("logo.png", "image/png", PNG, "logo"),)).raw)
    assert tree(message) == ["multipart/mixed", "text/plain", "image/png"]
    image = list(message.iter_parts())[1]
    assert image.get_content_disposition() == "attachment" and "Content-ID" not in image


def test_attachments_non_ascii_name_and_exact_binary_bytes() -> None:
    composed = build(
        text="Two files",
        attachments=(
            Upload("Größenübersicht 2024.pdf", "application/pdf", b"%PDF-1.4 tiny"),
            Upload("blob.bin", "application/octet-stream", BINARY),
        ),
    )
    assert b"filename*=utf-8''Gr%C3%B6%C3%9Fen%C3%BCbersicht%202024.pdf" in composed.raw
    message = parsed(composed.raw)
    assert tree(message) == ["multipart/mixed", "text/plain", "application/pdf", "application/octet-stream"]
    _, pdf, blob = message.iter_parts()
    assert pdf.get_filename() == "Größenübersicht 2024.pdf"
    assert pdf["Content-Transfer-Encoding"] == "base64" == blob["Content-Transfer-Encoding"]
    assert pdf.get_content_disposition() == "attachment"
    assert content(blob) == BINARY
    assert base64.b64decode(str(blob.get_payload())) == BINARY
    ours = parse_message(composed.raw)
    assert [(a.filename, a.content_type, a.size, a.inline) for a in ours.attachments] == [
        ("Größenübersicht 2024.pdf", "application/pdf", 13, False),
        ("blob.bin", "application/octet-stream", len(BINARY), False),
    ]
    assert ours.has_attachments and ours.body_text == "Two files\n"


def test_only_attachments_and_no_text_gives_no_empty_text_part() -> None:
    message = parsed(build(attachments=(Upload("a.txt", "text/plain; charset=ISO-8859-1", b"caf\xe9"),)).raw)
    assert tree(message) == ["multipart/mixed", "text/plain"]
    part = list(message.iter_parts())[0]
    assert part.get_content_disposition() == "attachment"
    assert part.get_content_charset() == "iso-8859-1" and content(part) == "café"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("", "application/octet-stream"),
        ("IMAGE/PNG", "image/png"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", None),
        ("multipart/mixed", "application/octet-stream"),
        ("message/partial", "application/octet-stream"),
    ],
)
def test_attachment_content_types(content_type: str, expected: str | None) -> None:
    message = parsed(build(text="x", attachments=(Upload("f", content_type, b"data"),)).raw)
    part = list(message.iter_parts())[1]
    assert part.get_content_type() == (expected or content_type)


@pytest.mark.parametrize("content_type", ["pdf", "text/", "a/b/c", "text/plain\r\nBcc: x@y.z", "tëxt/plain"])
def test_bad_content_type_is_refused(content_type: str) -> None:
    with pytest.raises(ComposeError) as error:
        build(text="x", attachments=(Upload("f.pdf", content_type, b"x"),))
    assert error.value.field == "attachments"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\report.docx", "report.docx"),
        ("evil\r\nContent-Type: text/html\r\n.txt", "html.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("", "attachment.pdf"),
        ("..", "attachment.pdf"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_filenames_are_sanitised(filename: str, expected: str) -> None:
    composed = build(text="x", attachments=(Upload(filename, "application/pdf", b"%PDF"),))
    message = parsed(composed.raw)
    part = list(message.iter_parts())[1]
    assert part.get_filename() == expected
    assert sorted(part.keys()) == ["Content-Disposition", "Content-Transfer-Encoding", "Content-Type"]
    assert part.get_content_type() == "application/pdf"


def test_content_ids_are_checked() -> None:
    html = '<img src="cid:a"><img src="cid:A">'
    with pytest.raises(ComposeError) as error:
        build(
            html=html,
            attachments=(Upload("a.png", "image/png", PNG, "a"), Upload("b.png", "image/png", PNG, "A")),
        )
    assert error.value.field == "attachments"
    with pytest.raises(ComposeError) as error:
        build(html=html, attachments=(Upload("a.png", "image/png", PNG, "a b\r\nX: y"),))
    assert error.value.field == "attachments"


# --- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name", "email"),
    [
        ("ann@example.com", "", "ann@example.com"),
        ("  Ann Example <ann@EXAMPLE.com>  ", "Ann Example", "ann@example.com"),
        ('"Doe, Ann" <ann@example.com>', "Doe, Ann", "ann@example.com"),
        ("<ann@example.com>", "", "ann@example.com"),
        ("Zoë <zoë@exämple.de>", "Zoë", "zoë@exämple.de"),
        ("Zoë <zoe@EXÄMPLE.DE>", "Zoë", "zoe@exämple.de"),
        ("zoe@xn--exmple-cua.de", "", "zoe@xn--exmple-cua.de"),
        ("=?utf-8?q?Zo=C3=AB?= <zoe@example.com>", "Zoë", "zoe@example.com"),
        ('"john doe"@example.com', "", '"john doe"@example.com'),
        ("Ann.Example+tag@sub.example.co.uk", "", "Ann.Example+tag@sub.example.co.uk"),
    ],
)
def test_parse_address(value: str, name: str, email: str) -> None:
    assert parse_address(value, field="to") == Address(name=name, email=email)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.com",
        "ann@@example.com",
        "Doe, Ann <ann@example.com>",
        "ann@example.com, bob@example.com",
        "ann@example.com bob@example.com",
        "friends: ann@example.com;",
        "undisclosed-recipients:;",
        "a@b.c\r\nBcc: x@y.z",
        "ann@example.com\n",
        "ann\x00@example.com",
        "ann\u2028@example.com",
        "ann@exa mple.com",
        "ann@localhost",
        "ann@[192.0.2.1]",
        "ann@192.0.2.1",
        "ann@-example.com",
        "ann@exam_ple.com",
        "ann@example..com",
        "a..b@example.com",
        "Ann <ann@example.com> trailing",
        "x" * 990 + "@example.com",
        "x" * 250 + "@example.com",
    ],
)
def test_parse_address_refuses(value: str) -> None:
    with pytest.raises(ComposeError) as error:
        parse_address(value, field="cc")
    assert error.value.field == "cc"
    assert str(error.value).endswith(".") and len(str(error.value)) > 20


def test_ascii_email() -> None:
    assert addr("Zoë <zoe@exämple.de>").ascii_email() == "zoe@xn--exmple-cua.de"
    assert addr("ann@example.com").ascii_email() == "ann@example.com"
    assert addr("zoë@exämple.de").ascii_email() is None


def test_rfc2047_display_names_and_subject() -> None:
    composed = build(
        sender=addr("Zoë Müller <zoe@example.org>", "sender"),
        to=(addr('"Müller, Ann" <ann@example.com>'), addr("Jürgen <j@example.com>")),
        subject="Grüße – ein Test 🎉",
        text="x",
    )
    head = composed.raw.partition(b"\r\n\r\n")[0]
    assert head.isascii() and b"=?utf-8?" in head
    message = parsed(composed.raw)
    assert message["From"].addresses[0].display_name == "Zoë Müller"
    assert [a.display_name for a in message["To"].addresses] == ["Müller, Ann", "Jürgen"]
    assert message["Subject"] == "Grüße – ein Test 🎉"
    ours = parse_message(composed.raw)
    assert (ours.sender_name, ours.sender) == ("Zoë Müller", "zoe@example.org")
    assert ours.subject == "Grüße – ein Test 🎉"
    assert ours.recipient == "ann@example.com, j@example.com"
    assert ours.recipient_names == '"Müller, Ann" <ann@example.com>, Jürgen <j@example.com>'


def test_idn_domain_with_ascii_local_part() -> None:
    composed = build(
        sender=addr("Zoë <zoe@exämple.de>", "sender"), to=(addr("info@bücher.example"),), text="x"
    )
    assert composed.smtputf8 is False
    assert b"From: =?utf-8?q?Zo=C3=AB?= <zoe@xn--exmple-cua.de>\r\n" in composed.raw
    assert b"To: info@xn--bcher-kva.example\r\n" in composed.raw
    assert composed.envelope_from == "zoe@xn--exmple-cua.de"
    assert composed.recipients == ("info@xn--bcher-kva.example",)
    assert parse_message(composed.raw).sender == "zoe@xn--exmple-cua.de"


def test_utf8_local_part_needs_smtputf8() -> None:
    composed = build(sender=ME, to=(addr("Zoë <zoë@exämple.de>"), BOB), subject="Grüße", text="Hallo Zoë")
    assert composed.smtputf8 is True
    head, _, body = composed.raw.partition(b"\r\n\r\n")
    assert "To: Zoë <zoë@exämple.de>, Bob <bob@example.com>".encode() in head
    assert body.isascii()
    assert composed.recipients == ("zoë@exämple.de", "bob@example.com")
    # The stdlib's bytes parser does not read UTF-8 headers (RFC 6532); its str parser does.
    message = Parser(policy=policy.SMTPUTF8).parsestr(composed.raw.decode("utf-8"))
    assert message["To"].addresses[0].addr_spec == "zoë@exämple.de"
    assert message["Subject"] == "Grüße"
    ours = parse_message(composed.raw)
    assert ours.recipient == "zoë@exämple.de, bob@example.com" and ours.subject == "Grüße"
    sender = build(sender=addr("zoë@example.org", "sender"), text="x")
    assert sender.smtputf8 and sender.envelope_from == "zoë@example.org"


def test_recipients_are_deduplicated_in_order() -> None:
    composed = build(
        to=(addr("Ann <Ann@Example.com>"), addr("bob@example.com")),
        cc=(addr("ann@example.com"), addr("cy@bücher.example")),
        bcc=(addr("ANN@EXAMPLE.COM"), addr("cy@xn--bcher-kva.example"), addr("dee@example.com")),
        text="x",
    )
    assert composed.recipients == (
        "Ann@example.com",
        "bob@example.com",
        "cy@xn--bcher-kva.example",
        "dee@example.com",
    )


def test_at_least_one_recipient() -> None:
    with pytest.raises(ComposeError) as error:
        compose(Draft(sender=ME, text="x"), message_id_domain="example.org", now=NOW)
    assert error.value.field == "to"
    only_bcc = build(bcc=(BOB,), text="x")
    assert only_bcc.recipients == ("bob@example.com",)
    assert "To" not in parsed(only_bcc.raw)


def test_reply_to_and_cc_headers() -> None:
    composed = build(cc=(addr("Cy <cy@example.com>"),), reply_to=(addr("Team <team@example.org>"),), text="x")
    message = parsed(composed.raw)
    assert message["Cc"] == "Cy <cy@example.com>"
    assert message["Reply-To"] == "Team <team@example.org>"
    assert parse_message(composed.raw).cc == "cy@example.com"


# --- header injection -----------------------------------------------------------------------------


def test_header_injection_is_refused() -> None:
    with pytest.raises(ComposeError) as error:
        parse_address("a@b.c\r\nBcc: x@y.z", field="to")
    assert error.value.field == "to"
    cases: list[tuple[dict[str, object], str]] = [
        ({"to": (Address("", "a@b.c\r\nBcc: x@y.z"),)}, "to"),
        ({"to": (Address("Ann\r\nBcc: x@y.z", "a@b.cd"),)}, "to"),
        ({"cc": (Address("", "Ann <a@b.cd>"),)}, "cc"),
        ({"sender": Address("", "me@example.org\nX-Evil: 1")}, "sender"),
        ({"reply_to": (Address("", "x@y.z\r\n"),)}, "reply_to"),
        ({"subject": "Hi\r\nBcc: x@y.z"}, "subject"),
        ({"subject": "Hi\nthere"}, "subject"),
        ({"subject": "Hi\u2028there"}, "subject"),
        ({"subject": "Hi\x0bthere"}, "subject"),
        ({"in_reply_to": "<a@b>\r\nBcc: x@y.z"}, "in_reply_to"),
        ({"references": ("<a@b>", "not an id")}, "references"),
    ]
    for draft_fields, field in cases:
        with pytest.raises(ComposeError) as error:
            build(text="x", **draft_fields)
        assert error.value.field == field, draft_fields


def test_injected_filename_is_neutralised() -> None:
    composed = build(text="x", attachments=(Upload("a.txt\r\nBcc: x@y.z\r\n\r\nbody", "text/plain", b"hi"),))
    message = parsed(composed.raw)
    assert "Bcc" not in message
    part = list(message.iter_parts())[1]
    assert part.get_filename() == "a.txtBcc: x@y.zbody"
    assert sorted(part.keys()) == ["Content-Disposition", "Content-Transfer-Encoding", "Content-Type"]


def test_overlong_header_line_is_refused_not_sent() -> None:
    with pytest.raises(ComposeError) as error:
        build(sender=Address("a" * 1200, "me@example.org"), text="x")
    assert error.value.field == "sender"


def test_long_headers_are_folded() -> None:
    many = tuple(addr(f"Person Number {i} <person.{i}@example.com>") for i in range(200))
    composed = build(to=many, cc=many[:50], subject="word " * 400 + "ü" * 500 + "x" * 2000, text="x")
    message = parsed(composed.raw)
    assert len(message["To"].addresses) == 200
    assert message["Subject"] == ("word " * 400 + "ü" * 500 + "x" * 2000).strip()


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone"):
        compose(Draft(sender=ME, to=(BOB,)), message_id_domain="example.org", now=datetime(2024, 1, 1))
    utc = compose(
        Draft(sender=ME, to=(BOB,)), message_id_domain="example.org", now=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n" in utc.raw


# --- Bcc ------------------------------------------------------------------------------------------


def test_bcc_is_kept_in_raw_and_removed_for_smtp() -> None:
    hidden = tuple(addr(f"Hidden Person {i} <hidden.{i}@example.com>") for i in range(12))
    composed = build(to=(BOB,), bcc=hidden, subject="Secret", text="Body text\r\nBcc: not a header\r\n")
    head = composed.raw.partition(b"\r\n\r\n")[0]
    bcc_lines = [line for line in head.split(b"\r\n") if line.startswith(b"Bcc:") or b"hidden." in line]
    assert len(bcc_lines) > 2, "the Bcc header is folded over several lines"
    assert len(parsed(composed.raw)["Bcc"].addresses) == 12
    sent = without_bcc(composed.raw)
    assert b"hidden." not in sent and b"Bcc:" not in sent.partition(b"\r\n\r\n")[0]
    assert b"Bcc: not a header" in sent  # the body is untouched
    expected = b"\r\n".join(line for line in composed.raw.split(b"\r\n") if line not in bcc_lines)
    assert sent == expected
    message = parsed(sent)
    assert message["Subject"] == "Secret" and message["To"] == "Bob <bob@example.com>"
    assert message["Message-ID"] == composed.message_id
    assert "hidden.0@example.com" in composed.recipients


def test_without_bcc_on_raw_bytes() -> None:
    raw = (
        b"From: a@example.com\nBCC : x@example.com,\n\ty@example.com\nTo: b@example.com\n"
        b"bcc: z@example.com\nSubject: s\n Bcc-continued\n\nBcc: body@example.com\n"
    )
    assert without_bcc(raw) == (
        b"From: a@example.com\nTo: b@example.com\nSubject: s\n Bcc-continued\n\nBcc: body@example.com\n"
    )
    assert without_bcc(b"From: a@b.cd\r\nBcc: x@y.zz") == b"From: a@b.cd\r\n"
    assert without_bcc(b"") == b""
    unchanged = b"From: a@b.cd\r\nResent-Bcc: r@b.cd\r\nX-Bcc: y\r\n\r\nbody"
    assert without_bcc(unchanged) == unchanged


# --- replies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hi", "Re: Hi"),
        ("Re: Hi", "Re: Hi"),
        ("RE: Hi", "RE: Hi"),
        ("re:Hi", "re:Hi"),
        ("Re[2]: Hi", "Re[2]: Hi"),
        ("RE : Hi", "RE : Hi"),
        ("Fwd: Hi", "Re: Fwd: Hi"),
        ("Regarding the plan", "Re: Regarding the plan"),
        ("  Hi  ", "Re: Hi"),
        ("", "Re:"),
        ("   ", "Re:"),
        ("Hi\r\nBcc: x@y.z", "Re: Hi  Bcc: x@y.z"),
    ],
)
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected
    assert reply_subject(reply_subject(subject)) == reply_subject(subject)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hi", "Fwd: Hi"),
        ("Fwd: Hi", "Fwd: Hi"),
        ("Fw: Hi", "Fw: Hi"),
        ("FWD:Hi", "FWD:Hi"),
        ("Re: Hi", "Fwd: Re: Hi"),
        ("Fwdx", "Fwd: Fwdx"),
        ("", "Fwd:"),
    ],
)
def test_forward_subject(subject: str, expected: str) -> None:
    assert forward_subject(subject) == expected


def test_reply_threading() -> None:
    assert reply_threading("<c@x>", "<a@x> <b@x>") == ("<c@x>", ("<a@x>", "<b@x>", "<c@x>"))
    assert reply_threading("<c@x>", "") == ("<c@x>", ("<c@x>",))
    # No References: the parent's single In-Reply-To comes first (RFC 5322 3.6.4).
    assert reply_threading("<c@x>", "", "<b@x>") == ("<c@x>", ("<b@x>", "<c@x>"))
    assert reply_threading("<c@x>", "", "<a@x> <b@x>") == ("<c@x>", ("<c@x>",))
    assert reply_threading("<c@x>", "<a@x>", "<b@x>") == ("<c@x>", ("<a@x>", "<c@x>"))
    assert reply_threading("", "<a@x> <b@x>") == ("", ("<a@x>", "<b@x>"))
    assert reply_threading("garbage", "") == ("", ())
    # Folded, unbracketed, duplicated and non-ASCII ids.
    assert reply_threading("c@x", "<a@x>\r\n <b@x> <a@x> <é@x>") == ("<c@x>", ("<a@x>", "<b@x>", "<c@x>"))
    assert reply_threading("<c@x>", "<c@x> <a@x>") == ("<c@x>", ("<a@x>", "<c@x>"))


def test_reply_threading_is_bounded() -> None:
    refs = " ".join(f"<{i}@example.com>" for i in range(50))
    in_reply_to, references = reply_threading("<50@example.com>", refs)
    assert in_reply_to == "<50@example.com>"
    assert len(references) == MAX_REFERENCES == 20
    assert references[0] == "<0@example.com>"
    assert references[1:] == tuple(f"<{i}@example.com>" for i in range(32, 51))


def test_reply_headers() -> None:
    long_id = "<" + "a" * 150 + "@example.com>"
    refs = " ".join(f"<{i}@example.com>" for i in range(30)) + " " + long_id
    in_reply_to, references = reply_threading("<parent@example.com>", refs)
    composed = build(
        subject=reply_subject("Re: Plans"), in_reply_to=in_reply_to, references=references, text="Agreed"
    )
    message = parsed(composed.raw)
    assert message["Subject"] == "Re: Plans"
    assert message["In-Reply-To"] == "<parent@example.com>"
    assert message["References"].split() == list(references)
    assert long_id.encode() in composed.raw and b"=?utf-8?" not in composed.raw  # an id is never encoded
    ours = parse_message(composed.raw)
    assert ours.in_reply_to == "<parent@example.com>" and ours.references == list(references)
    long_parent = build(in_reply_to=long_id, text="x")
    assert parsed(long_parent.raw)["In-Reply-To"] == long_id
    bare = build(in_reply_to="parent@example.com", references=("a@example.com",), text="x")
    assert parsed(bare.raw)["References"] == "<a@example.com>"
    assert parsed(bare.raw)["In-Reply-To"] == "<parent@example.com>"


# --- forwarding -----------------------------------------------------------------------------------


def test_forward_attached() -> None:
    composed = build(subject=forward_subject("Quarterly figures"), text="FYI", forward=ORIGINAL)
    message = parsed(composed.raw)
    assert tree(message)[:3] == ["multipart/mixed", "text/plain", "message/rfc822"]
    _, attached = message.iter_parts()
    assert attached.get_filename() == "Quarterly figures.eml"
    inner = content(attached)
    assert inner["Subject"] == "Quarterly figures" and inner["Message-ID"] == "<orig-1@example.com>"
    assert ORIGINAL in composed.raw  # verbatim: a 7-bit original is not rewritten
    ours = parse_message(composed.raw)
    assert ours.body_text == "FYI\n"
    assert [(a.filename, a.content_type) for a in ours.attachments] == [
        ("Quarterly figures.eml", "message/rfc822")
    ]


def test_forward_attached_without_text_and_lf_original() -> None:
    original = b"From: a@example.com\nSubject: Short\n\nline one\nline two\n"
    composed = build(forward=original)
    message = parsed(composed.raw)
    assert tree(message) == ["multipart/mixed", "message/rfc822", "text/plain"]
    assert b"\r\nSubject: Short\r\n\r\nline one\r\nline two\r\n" in composed.raw
    assert list(message.iter_parts())[0].get_content()["Subject"] == "Short"
    untitled = parsed(build(forward=b"From: a@example.com\n\nno subject\n").raw)
    assert list(untitled.iter_parts())[0].get_filename() == "message.eml"


def test_forward_attached_8bit_original_is_made_7bit() -> None:
    original = (
        "From: Jürgen <j@example.com>\nTo: b@example.com\nSubject: Grüße aus Köln\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nHällo Bob\n"
    ).encode()
    composed = build(forward=original)
    part = list(parsed(composed.raw).iter_parts())[0]
    assert part.get_content_type() == "message/rfc822"
    assert part.get_filename() == "Grüße aus Köln.eml"
    inner = content(part)
    assert inner["Subject"] == "Grüße aus Köln"
    assert content(inner) == "Hällo Bob\n"


def test_forward_attached_broken_original() -> None:
    for original in (b"", b"\xff\xfe\x00garbage", b"Subject: x\n\n" + b"\xe9" * 5000 + b"\n"):
        composed = build(text="see", forward=original)
        assert len(list(parsed(composed.raw).iter_parts())) == 2


def test_forward_inline() -> None:
    composed = build(
        subject=forward_subject("Quarterly figures"),
        text="See below.",
        html="<p>See <b>below</b>.</p>",
        forward=ORIGINAL,
        forward_inline=True,
    )
    message = parsed(composed.raw)
    assert tree(message) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert content(text) == (
        "See below.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Ann Example <ann@example.com>\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0100\n"
        "Subject: Quarterly figures\n"
        "To: Bob <bob@example.com>\n"
        "Cc: Cy <cy@example.com>\n\n"
        "The figures are attached.\n"
    )
    html_text = content(html)
    assert html_text.startswith("<p>See <b>below</b>.</p>")
    assert "From: Ann Example &lt;ann@example.com&gt;<br>" in html_text
    assert "<p>The <b>figures</b> are attached.</p>" in html_text
    assert "<style>" not in html_text and "<body" not in html_text
    pdf = list(message.iter_parts())[1]
    assert pdf.get_filename() == "q1.pdf" and content(pdf) == BINARY
    image = [part for part in message.walk() if part.get_content_type() == "image/png"][0]
    assert image["Content-ID"] == "<chart@example.com>" and content(image) == PNG
    ours = parse_message(composed.raw)
    assert [(a.filename, a.content_type, a.inline) for a in ours.attachments] == [
        ("attachment.png", "image/png", True),
        ("q1.pdf", "application/pdf", False),
    ]


def test_forward_inline_text_only() -> None:
    original = b"From: a@example.com\nTo: b@example.com\nSubject: Note\n\nOriginal words\n"
    message = parsed(build(text="Mine", forward=original, forward_inline=True).raw)
    assert tree(message) == ["text/plain"]
    assert content(message).endswith("Subject: Note\nTo: b@example.com\n\nOriginal words\n")
    # No words of the draft's own: the body is just the forwarded part.
    alone = content(parsed(build(forward=original, forward_inline=True).raw))
    assert alone.startswith("---------- Forwarded message ---------\nFrom: a@example.com\n")


def test_forward_inline_draft_html_only_keeps_its_words_in_the_text() -> None:
    original = b"From: a@example.com\nSubject: Note\nContent-Type: text/html\n\n<p>Original &amp; words</p>\n"
    message = parsed(build(html="<p>My <i>words</i></p>", forward=original, forward_inline=True).raw)
    text = message.get_body(("plain",))
    assert text is not None
    assert content(text).startswith("My words\n\n---------- Forwarded message ---------\n")
    assert "Original & words" in content(text)


def test_forward_inline_malformed_original_still_forwards() -> None:
    for original in (
        b"",
        b"\x00\xff garbage without headers",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nunterminated",
        b"Subject: =?utf-8?b?broken\nFrom: <<<\nContent-Type: text/html\n\n<p><b>unclosed",
        b"Content-Type: multipart/mixed\n\n" + b"--b\n" * 50,
    ):
        composed = build(text="fwd", forward=original, forward_inline=True)
        message = parsed(composed.raw)
        body = message.get_body(("plain",))
        assert body is not None and "---------- Forwarded message ---------" in content(body)


# --- round trip through imap2api's own parser ---------------------------------------------------


def test_parse_message_reads_what_compose_writes() -> None:
    composed = build(
        sender=addr("Zoë Müller <zoe@example.org>", "sender"),
        to=(addr("Ann <ann@example.com>"), addr("bob@example.com")),
        cc=(addr("Cy <cy@example.com>"),),
        bcc=(addr("dee@example.com"),),
        subject="Ünïcode and a long subject " * 5,
        text="Plain ünïcode\n" * 3,
        html="<p>Rich <b>ünïcode</b></p>",
        attachments=(
            Upload("notes.txt", "text/plain", "ünïcode notes".encode()),
            Upload("logo.png", "image/png", PNG, content_id="logo"),
            Upload("données.bin", "application/octet-stream", BINARY),
        ),
        in_reply_to="<p@example.com>",
        references=("<root@example.com>", "<p@example.com>"),
    )
    ours = parse_message(composed.raw)
    assert ours.message_id == composed.message_id
    assert ours.subject == ("Ünïcode and a long subject " * 5).strip()
    assert (ours.sender_name, ours.sender) == ("Zoë Müller", "zoe@example.org")
    assert ours.recipient == "ann@example.com, bob@example.com"
    assert ours.cc == "cy@example.com"
    assert ours.body_text == "Plain ünïcode\n" * 3
    assert ours.body_html == "<p>Rich <b>ünïcode</b></p>\n"
    assert ours.date == NOW.replace(microsecond=0)
    assert ours.in_reply_to == "<p@example.com>"
    assert ours.references == ["<root@example.com>", "<p@example.com>"]
    assert [(a.filename, a.content_type, a.size, a.inline) for a in ours.attachments] == [
        ("logo.png", "image/png", len(PNG), True),
        ("notes.txt", "text/plain", len("ünïcode notes".encode()), False),
        ("données.bin", "application/octet-stream", len(BINARY), False),
    ]
    assert ours.has_attachments
    assert parse_message(without_bcc(composed.raw)).subject == ours.subject


def test_forward_inline_delivery_report_and_8bit_preamble() -> None:
    report = (
        b"From: MAILER-DAEMON@example.com\nTo: me@example.org\nSubject: Undelivered\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        b"Pr\xc3\xa9ambule en fran\xc3\xa7ais\n--r\nContent-Type: text/plain\n\nIt bounced.\n"
        b"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
        b"Final-Recipient: rfc822; x@example.com\nAction: failed\nStatus: 5.1.1\n--r--\n"
    )
    for inline in (False, True):
        message = parsed(build(text="why?", forward=report, forward_inline=inline).raw)
        if inline:
            status = list(message.iter_parts())[1]
            assert status.get_content_type() == "application/octet-stream"  # the stdlib cannot base64 it
            assert b"Status: 5.1.1" in content(status)
        else:
            inner = content(list(message.iter_parts())[1])
            assert inner["Subject"] == "Undelivered" and "Pr??ambule" in (inner.preamble or "")


def test_eml_upload_is_embedded_as_a_message() -> None:
    original = b"From: a@example.com\r\nSubject: Attached mail\r\n\r\nbody\r\n"
    message = parsed(build(text="x", attachments=(Upload("mail.eml", "message/rfc822", original),)).raw)
    part = list(message.iter_parts())[1]
    assert part.get_content_type() == "message/rfc822" and part.get_filename() == "mail.eml"
    assert content(part)["Subject"] == "Attached mail"


@pytest.mark.parametrize("path", sorted(MESSAGES.iterdir()), ids=lambda path: path.name)
def test_every_fixture_message_forwards(path: Path) -> None:
    original = path.read_bytes()
    subject = parse_message(original).subject
    attached = parsed(build(text="fwd", html="<p>fwd</p>", forward=original).raw)
    part = list(attached.iter_parts())[1]
    assert part.get_content_type() == "message/rfc822"
    assert part.get_filename() == (
        (subject.replace("/", "-").strip(" .")[:100].strip() or "message") + ".eml"
    )
    inlined = build(text="fwd", forward=original, forward_inline=True)
    text = parsed(inlined.raw).get_body(("plain",))
    assert text is not None and f"Subject: {subject}\n" in content(text)


def test_forward_inline_reattaches_an_embedded_message() -> None:
    original = (
        b'From: a@example.com\nSubject: outer\nContent-Type: multipart/mixed; boundary="x"\n\n'
        b"--x\nContent-Type: text/plain\n\nouter body\n"
        b"--x\nContent-Type: message/rfc822\n\nFrom: b@example.com\nSubject: inner one\n\ninner body\n--x--\n"
    )
    message = parsed(build(text="x", forward=original, forward_inline=True).raw)
    assert tree(message)[:3] == ["multipart/mixed", "text/plain", "message/rfc822"]
    embedded = list(message.iter_parts())[1]
    assert embedded.get_filename() == "inner one.eml"
    assert content(embedded)["Subject"] == "inner one" and content(content(embedded)) == "inner body"
