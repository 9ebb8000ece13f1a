"""Byte-level tests of imap2api.mail: headers, bodies, attachments, thread ids, and never raising."""

from __future__ import annotations

import base64
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imap2api.mail import ParsedAttachment, ParsedMessage, parse_message, parse_msg_ids, thread_keys
from imap2api.mail.headers import decode_bytes, decode_header, parse_date
from imap2api.mail.parse import MAX_REFERENCES

MESSAGES = Path(__file__).parent / "messages"


def load(name: str, *, crlf: bool = False) -> bytes:
    """A fixture message, optionally with the CRLF line ends IMAP servers deliver."""
    raw = (MESSAGES / name).read_bytes()
    return raw.replace(b"\n", b"\r\n") if crlf else raw


def simple(headers: str | bytes = b"", body: bytes = b"Hello\n") -> bytes:
    """A single-part message from header lines (LF separated) and a body."""
    if isinstance(headers, str):
        headers = headers.encode()
    base = b"Message-ID: <t@example.com>\nFrom: a@example.com\nTo: b@example.com\n"
    return base + headers + (b"\n" if headers and not headers.endswith(b"\n") else b"") + b"\n" + body


def subject_of(value: str | bytes) -> str:
    """The decoded subject of a message carrying this raw Subject header."""
    raw = value.encode() if isinstance(value, str) else value
    return parse_message(simple(b"Subject: " + raw)).subject


def assert_sane(parsed: ParsedMessage, raw: bytes) -> None:
    """Every field has its declared type, text has no NUL, the date is plausible."""
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
        value.encode("utf-8")  # storable: no lone surrogates
    assert all(isinstance(ref, str) and ref.startswith("<") for ref in parsed.references)
    assert parsed.date is None or (parsed.date.tzinfo is not None and parsed.date.year >= 1970)
    assert parsed.size == len(raw)
    for attachment in parsed.attachments:
        assert isinstance(attachment, ParsedAttachment)
        assert attachment.size >= 0 and "/" in attachment.content_type
        assert attachment.filename is None or "\x00" not in attachment.filename
    assert parsed.has_attachments == any(not a.inline for a in parsed.attachments)


# --- RFC 2047 and raw headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=", "Grüße aus Köln"),
        ("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "Grüße aus Köln"),
        ("=?iso-8859-1?q?caf=E9_cr=E8me?=", "café crème"),
        ("=?ISO-8859-1?B?Y2Fm6Q==?=", "café"),
        ("=?koi8-r?B?8NLJ18XULCDNydI=?=", "Привет, мир"),
        # Adjacent words: the whitespace between them disappears, plain text keeps its own.
        ("=?utf-8?q?Hello_?= =?iso-8859-1?q?W=F6rld?= and more", "Hello Wörld and more"),
        ("Re: =?utf-8?q?caf=C3=A9?= time", "Re: café time"),
        # A UTF-8 character split over two words is joined before decoding.
        ("=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=", "éé"),
        ("=?utf-8?Q?=C3?= =?utf-8?Q?=A9t=C3=A9?=", "été"),
        ("=?utf-8*en?q?language_tag?=", "language tag"),
        ("=?utf-8?b?w6k?=", "é"),  # missing padding
        ("=?x-no-such-charset?q?na=C3=AFve?=", "naïve"),  # unknown charset: UTF-8 guess
        ("=?x-no-such-charset?q?na=EFve?=", "naïve"),  # ... else Latin-1/Windows-1252
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("plain subject", "plain subject"),
    ],
)
def test_encoded_word_subjects(raw: str, expected: str) -> None:
    assert subject_of(raw) == expected


def test_folded_subject_is_unfolded() -> None:
    assert subject_of("first line\n second line\n\tthird") == "first line second line third"
    # Folding between encoded-words is whitespace between adjacent words: dropped.
    assert subject_of("=?utf-8?q?Gr=C3=BC?=\n =?utf-8?q?=C3=9Fe?=") == "Grüße"


def test_control_characters_and_nul_leave_headers() -> None:
    assert subject_of(b"a\x00b\x07c\x1bd") == "abcd"
    assert subject_of("=?utf-8?q?nul=00here_tab=09x?=") == "nulhere tab x"


@pytest.mark.parametrize("crlf", [False, True])
def test_raw_utf8_headers(crlf: bool) -> None:
    parsed = parse_message(load("raw_utf8_headers.eml", crlf=crlf))
    assert parsed.subject == "Grüße – raw UTF-8"
    assert (parsed.sender_name, parsed.sender) == ("Jürgen Müller", "juergen@example.de")
    assert parsed.recipient_names == "Björn <bjorn@example.se>"


@pytest.mark.parametrize("crlf", [False, True])
def test_raw_latin1_headers(crlf: bool) -> None:
    parsed = parse_message(load("raw_latin1_headers.eml", crlf=crlf))
    assert parsed.subject == "Résumé en Latin-1"
    assert (parsed.sender_name, parsed.sender) == ("François", "francois@example.fr")


def test_raw_8bit_header_falls_back_to_the_body_charset() -> None:
    raw = simple(
        b"Subject: \xcf\xf0\xe8\xe2\xe5\xf2\nContent-Type: text/plain; charset=windows-1251",
        "Привет".encode("cp1251"),
    )
    parsed = parse_message(raw)
    assert parsed.subject == "Привет"
    assert parsed.body_text == "Привет"


def test_decode_header_helper() -> None:
    assert decode_header(None) == ""
    assert decode_header("  =?utf-8?q?x?=  ") == "x"


# --- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
def test_from_to_cc_and_folded_headers(crlf: bool) -> None:
    parsed = parse_message(load("alternative.eml", crlf=crlf))
    assert parsed.subject == "Grüße from the folded subject line"
    assert parsed.sender == "renee@example.com"
    assert parsed.sender_name == "Renée Durand"
    assert parsed.recipient == "bob@example.org, jane@example.net, carol@example.net"
    assert parsed.recipient_names == (
        'Bob Example <bob@example.org>, "Doe, Jane" <jane@example.net>, carol@example.net'
    )
    assert parsed.cc == "dave@example.com, erin@example.com"


@pytest.mark.parametrize(
    ("to", "recipient", "names"),
    [
        ("undisclosed-recipients:;", "", ""),
        ("Undisclosed recipients: ;", "", ""),
        ("team: Ann <ann@x.org>, bo@x.org;", "ann@x.org, bo@x.org", "Ann <ann@x.org>, bo@x.org"),
        ("a@x.org, , b@x.org", "a@x.org, b@x.org", "a@x.org, b@x.org"),
        ("=?utf-8?q?Doe=2C_John?= <john@x.org>", "john@x.org", '"Doe, John" <john@x.org>'),
        ('"=?utf-8?b?w4lsaXNl?=" <elise@x.org>', "elise@x.org", "Élise <elise@x.org>"),
        ("jim@x.org (Jim Smith)", "jim@x.org", "Jim Smith <jim@x.org>"),
        ("MixedCase@Example.ORG", "MixedCase@Example.ORG", "MixedCase@Example.ORG"),  # kept as written
        ("", "", ""),
    ],
)
def test_recipients(to: str, recipient: str, names: str) -> None:
    parsed = parse_message(b"From: a@example.com\nTo: " + to.encode() + b"\n\nbody\n")
    assert parsed.recipient == recipient
    assert parsed.recipient_names == names


def test_repeated_to_headers_are_joined() -> None:
    parsed = parse_message(b"To: a@x.org\nTo: B <b@x.org>\nCc: c@x.org\nCc: d@x.org\n\nbody\n")
    assert parsed.recipient == "a@x.org, b@x.org"
    assert parsed.cc == "c@x.org, d@x.org"


def test_from_without_address_or_missing() -> None:
    parsed = parse_message(b"From: =?koi8-r?B?8NLJ18XULCDNydI=?=\n\nx\n")
    assert (parsed.sender_name, parsed.sender) == ("Привет, мир", "")
    assert parse_message(b"Subject: no from\n\nx\n").sender == ""
    # "Änn <ann@x.org>", address and all in one encoded-word.
    whole = parse_message(b"From: =?utf-8?B?w4RubiA8YW5uQHgub3JnPg==?=\n\nx\n")
    assert (whole.sender_name, whole.sender) == ("Änn", "ann@x.org")


# --- dates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 26 Nov 2024 17:30:00 +0100", datetime(2024, 11, 26, 16, 30, tzinfo=UTC)),
        ("Tue, 26 Nov 2024 09:30:00 -0800 (PST)", datetime(2024, 11, 26, 17, 30, tzinfo=UTC)),
        ("Tue, 26 Nov 2024 09:30:00 PST", datetime(2024, 11, 26, 17, 30, tzinfo=UTC)),
        ("26 Nov 2024 09:30 GMT", datetime(2024, 11, 26, 9, 30, tzinfo=UTC)),
        ("Tue, 26 Nov 2024 09:30:00", datetime(2024, 11, 26, 9, 30, tzinfo=UTC)),  # no zone: UTC
        ("Tue, 26 Nov 2024 09:30:00 -0000", datetime(2024, 11, 26, 9, 30, tzinfo=UTC)),
        ("Tue, 26 Nov 24 09:30:00 +0000", datetime(2024, 11, 26, 9, 30, tzinfo=UTC)),
        ("Tue, 30 Nov 1999 23:56:33 -3000 (CST)", datetime(1999, 11, 30, 23, 56, 33, tzinfo=UTC)),
        ("Tue, 26 Nov 2024 09:30:60 +0000", datetime(2024, 11, 26, 9, 30, 59, tzinfo=UTC)),
        ("2024-11-26 09:30:00+01:00", datetime(2024, 11, 26, 8, 30, tzinfo=UTC)),
        ("garbage", None),
        ("", None),
        ("Mon, 31 Feb 2003 10:00:00 +0000", None),
        ("Mon, 1 Jan 1900 00:00:00 +0000", None),
        ("Thu, 1 Jan 1970 00:30:00 +0100", None),  # 1969 in UTC
        ("Fri, 1 Jan 9999 00:00:00 +0000", None),
    ],
)
def test_dates(value: str, expected: datetime | None) -> None:
    parsed = parse_message(simple(f"Date: {value}"))
    assert parsed.date == expected
    if parsed.date is not None:
        assert parsed.date.utcoffset() == timedelta(0)


def test_missing_and_future_date() -> None:
    assert parse_message(simple()).date is None
    soon = datetime.now(UTC) + timedelta(days=30)
    assert parse_date(soon.strftime("%a, %d %b %Y %H:%M:%S +0000")) is not None
    later = datetime.now(UTC) + timedelta(days=400)
    assert parse_date(later.strftime("%a, %d %b %Y %H:%M:%S +0000")) is None


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
def test_multipart_alternative(crlf: bool) -> None:
    parsed = parse_message(load("alternative.eml", crlf=crlf))
    assert parsed.body_text == "Grüße,\nthis is the plain part.\n"
    assert parsed.body_html == "<html><body><p>Grüße,<br>this is the <b>html</b> part.</p></body></html>\n"
    assert parsed.attachments == [] and parsed.has_attachments is False
    assert parsed.date == datetime(2024, 11, 26, 16, 30, tzinfo=UTC)
    assert parsed.message_id == "<alt-1@example.com>"


def test_html_only() -> None:
    parsed = parse_message(load("html_only.eml"))
    assert parsed.body_text == ""
    assert parsed.body_html == "<h1>Hello</h1>\n"
    assert parsed.date == datetime(2024, 11, 27, 16, 0, tzinfo=UTC)


def test_latin1_body_with_declared_charset() -> None:
    assert parse_message(load("latin1_body.eml")).body_text == "Café crème brûlée, à bientôt.\n"


def test_unknown_charsets() -> None:
    parsed = parse_message(load("unknown_charset.eml"))
    assert parsed.body_text == "naïve UTF-8 under an unknown label"
    assert parsed.body_html == "<p>naïve Latin-1 under unknown-8bit</p>"


@pytest.mark.parametrize(
    ("charset", "data", "expected"),
    [
        ("ks_c_5601-1987", "안녕하세요".encode("cp949"), "안녕하세요"),
        ("windows-874", "สวัสดี".encode("cp874"), "สวัสดี"),
        ("iso-8859-8-i", "שלום".encode("iso-8859-8"), "שלום"),
        ("x-mac-cyrillic", "Привет".encode("mac_cyrillic"), "Привет"),
        ("x-mac-roman", "café".encode("mac_roman"), "café"),
        ('"utf8"', "naïve".encode(), "naïve"),
        ("'UTF-8'", "naïve".encode(), "naïve"),
        ("gb2312", "中文".encode("gbk"), "中文"),
        ("us-ascii", "naïve".encode(), "naïve"),  # the label lies: UTF-8 ...
        ("us-ascii", "naïve".encode("latin-1"), "naïve"),  # ... or Latin-1
        ("iso-8859-1", b"\x93quoted\x94", "\u201cquoted\u201d"),  # read as its superset windows-1252
        ("utf-8", b"caf\xe9", "café"),  # labelled UTF-8, written in Latin-1
        ("utf-8", "été".encode() + b"\xff", "été\ufffd"),  # real UTF-8 with one bad byte
        ("base64", b"caf\xc3\xa9", "café"),  # a codec but not a charset
        ("unknown-8bit", b"caf\xc3\xa9", "café"),
        (None, b"plain ascii", "plain ascii"),
    ],
)
def test_charset_aliases_and_fallbacks(charset: str | None, data: bytes, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


def test_body_charset_param_through_the_parser() -> None:
    raw = simple(b'Content-Type: text/plain; charset="ks_c_5601-1987"', "안녕".encode("cp949"))
    assert parse_message(raw).body_text == "안녕"


def test_no_content_type_with_8bit_body() -> None:
    assert parse_message(simple(b"", "Grüße\n".encode())).body_text == "Grüße\n"
    assert parse_message(simple(b"", b"Gr\xfc\xdfe\n")).body_text == "Grüße\n"


def test_html_meta_charset_when_header_has_none() -> None:
    html = '<html><head><meta charset="windows-1251"></head><body>Привет</body></html>'.encode("cp1251")
    parsed = parse_message(simple(b"Content-Type: text/html", html))
    assert "Привет" in parsed.body_html


def test_bad_base64() -> None:
    parsed = parse_message(load("bad_base64.eml"))
    assert parsed.body_text == "Hello plain text in base64\n"
    assert [a.filename for a in parsed.attachments] == ["broken.bin"]


@pytest.mark.parametrize("crlf", [False, True])
def test_truncated_multipart(crlf: bool) -> None:
    parsed = parse_message(load("truncated_multipart.eml", crlf=crlf))
    assert parsed.body_text == "The body survives.\n"
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.content_type) == ("report.pdf", "application/pdf")
    assert attachment.size == 81  # what decodes from the truncated base64
    assert parsed.has_attachments


def test_inline_text_parts_of_one_mixed_are_concatenated() -> None:
    parsed = parse_message(load("mixed_inline_text.eml"))
    assert parsed.body_text == "First part.\nSecond part."
    assert [(a.filename, a.content_type, a.inline) for a in parsed.attachments] == [
        ("photo.jpg", "image/jpeg", True),
        ("notes.txt", "text/plain", False),
    ]
    assert parsed.has_attachments


def test_inline_text_with_filename_is_the_body_when_there_is_no_other() -> None:
    raw = simple(b'Content-Type: text/plain\nContent-Disposition: inline; filename="msg.txt"', b"the body\n")
    parsed = parse_message(raw)
    assert parsed.body_text == "the body\n"
    assert parsed.attachments == []


def test_nul_bytes_are_removed() -> None:
    raw = simple(b"Subject: nul\x00subject", b"before\x00after\r\nline two\x00\r\n")
    parsed = parse_message(raw)
    assert parsed.body_text == "beforeafter\nline two\n"
    assert parsed.subject == "nulsubject"


def test_max_body_chars_truncates() -> None:
    raw = simple(b"Content-Type: text/plain; charset=utf-8", ("é" * 50 + "\n").encode())
    assert parse_message(raw, max_body_chars=10).body_text == "é" * 10
    assert parse_message(raw, max_body_chars=0).body_text == ""
    mixed = parse_message(load("mixed_inline_text.eml"), max_body_chars=5)
    assert mixed.body_text == "First"
    html = parse_message(load("alternative.eml"), max_body_chars=6)
    assert (html.body_text, html.body_html) == ("Grüße,", "<html>")


# --- attachments ----------------------------------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
def test_attachment_names_types_sizes(crlf: bool) -> None:
    parsed = parse_message(load("attachments.eml", crlf=crlf))
    assert parsed.body_html == '<p>See <img src="cid:logo@example.com"></p>'
    assert parsed.body_text == ""
    assert parsed.attachments == [
        # With its IMAP section (inside the multipart/related of part 1) and transfer encoding:
        ParsedAttachment(None, "image/png", 48, "<logo@example.com>", True, "1.2", "base64"),
        # filename*=UTF-8''na%C3%AFve.txt
        ParsedAttachment("naïve.txt", "text/plain", 34, None, False, "2", "base64"),
        # RFC 2231 continuations:
        ParsedAttachment("日本語のファイル.txt", "application/octet-stream", 24, None, False, "3", "base64"),
        # koi8-r encoded-word
        ParsedAttachment("Отчёт за май.pdf", "application/pdf", 109, None, False, "4", "base64"),
        # quoted-printable size
        ParsedAttachment("fix.patch", "text/x-diff", 15, None, True, "5", "quoted-printable"),
    ]
    assert parsed.has_attachments


def test_only_inline_parts_are_not_attachments() -> None:
    raw = (
        b"Content-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html\n\n<img src=cid:i>\n"
        b"--r\nContent-Type: image/gif\nContent-ID: <i>\nContent-Transfer-Encoding: base64\n\n"
        b"R0lGODlh\n--r--\n"
    )
    parsed = parse_message(raw)
    assert [(a.content_type, a.size, a.inline) for a in parsed.attachments] == [("image/gif", 6, True)]
    assert parsed.has_attachments is False


def test_rfc2231_filename_with_koi8r_charset_and_language() -> None:
    raw = simple(
        b"Content-Type: application/octet-stream\n"
        b"Content-Disposition: attachment; filename*=koi8-r'ru'%F0%D2%C9%D7%C5%D4.txt",
        b"x",
    )
    [attachment] = parse_message(raw).attachments
    assert attachment.filename == "Привет.txt"
    assert attachment.size == 1


def test_cp1251_encoded_word_name_parameter() -> None:
    name = "=?windows-1251?B?" + base64.b64encode("Документ.doc".encode("cp1251")).decode() + "?="
    raw = simple(f'Content-Type: application/msword; name="{name}"'.encode(), b"x")
    assert parse_message(raw).attachments[0].filename == "Документ.doc"


def test_image_without_name_is_an_attachment() -> None:
    raw = simple(b"Content-Type: image/png\nContent-Transfer-Encoding: base64", b"iVBORw0KGgo=\n")
    parsed = parse_message(raw)
    # A message that is not multipart has its body as section 1.
    assert parsed.attachments == [ParsedAttachment(None, "image/png", 8, None, False, "1", "base64")]
    assert parsed.body_text == ""


def test_garbage_content_type_is_octet_stream() -> None:
    headers = b'Content-Type: %22"application%22/pdf; name="x.pdf"\nContent-Transfer-Encoding: base64'
    raw = simple(headers, b"JVBE\n")
    [attachment] = parse_message(raw).attachments
    assert attachment.content_type == "application/octet-stream"


@pytest.mark.parametrize("crlf", [False, True])
def test_forwarded_message_is_an_attachment(crlf: bool) -> None:
    parsed = parse_message(load("forward.eml", crlf=crlf))
    assert parsed.body_text == "See below.\n"
    assert parsed.body_html == ""
    [forward] = parsed.attachments
    assert forward.content_type == "message/rfc822"
    assert forward.filename == "Lunch à midi.eml"
    assert forward.size > 300
    assert parsed.has_attachments
    assert parsed.subject == "Fwd: Lunch"


# --- Message-ID, In-Reply-To, References ----------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
def test_threading_headers(crlf: bool) -> None:
    parsed = parse_message(load("references.eml", crlf=crlf))
    assert parsed.message_id == "<reply-3@example.com>"
    assert parsed.in_reply_to == "<reply-2@example.com>"
    assert parsed.references == ["<root@example.com>", "<reply-1@example.com>", "<reply-2@example.com>"]
    assert thread_keys(parsed.message_id, parsed.in_reply_to, parsed.references) == [
        "<root@example.com>",
        "<reply-1@example.com>",
        "<reply-2@example.com>",
        "<reply-3@example.com>",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@x> <b@y>", ["<a@x>", "<b@y>"]),
        ("<a@x>,<b@y>", ["<a@x>", "<b@y>"]),
        ("<a@x>\r\n\t<b@y>\r\n <a@x>", ["<a@x>", "<b@y>"]),
        ("junk <a@x> (comment) more junk <b@y> trailing", ["<a@x>", "<b@y>"]),
        ("<split\r\n @x>", ["<split@x>"]),
        ("lone@x", ["<lone@x>"]),
        ("  lone@x\r\n", ["<lone@x>"]),
        ("<half@x", ["<half@x>"]),
        ("a@x b@y", ["<a@x>", "<b@y>"]),
        ("Your message of Tue, 26 Nov 2024", []),
        ("message from bob@x on Tuesday", []),
        ("<>", []),
        ("", []),
        (None, []),
    ],
)
def test_parse_msg_ids(value: str | None, expected: list[str]) -> None:
    assert parse_msg_ids(value) == expected


def test_message_id_variants() -> None:
    assert parse_message(simple()).message_id == "<t@example.com>"
    assert parse_message(b"Message-ID: bare@example.com\n\nx").message_id == "<bare@example.com>"
    assert parse_message(b"Message-Id:\n <folded@example.com>\n\nx").message_id == "<folded@example.com>"
    assert parse_message(b"Subject: none\n\nx").message_id == ""
    parsed = parse_message(b"In-Reply-To: <a@x> <b@x>\nReferences: <r@x> <r@x>\n\nx")
    assert (parsed.in_reply_to, parsed.references) == ("<a@x>", ["<r@x>"])


def test_thread_keys_order_and_dedup() -> None:
    assert thread_keys("<m@x>", "<p@x>", ["<r@x>", "<p@x>"]) == ["<r@x>", "<p@x>", "<m@x>"]
    assert thread_keys(" <m@x> ", "", []) == ["<m@x>"]
    assert thread_keys("", "", []) == []


# --- odd input never raises -----------------------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True])
def test_mbox_from_line_is_stripped(crlf: bool) -> None:
    raw = load("mbox_from.eml", crlf=crlf)
    parsed = parse_message(raw)
    assert parsed.message_id == "<mbox@example.com>"
    assert (parsed.sender_name, parsed.sender) == ("Alice", "alice@example.com")
    assert parsed.body_text == "Body after the mbox separator.\n"
    assert parsed.size == len(raw)


def test_empty_input() -> None:
    parsed = parse_message(b"")
    assert parsed == ParsedMessage()
    assert_sane(parsed, b"")


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(seed: int) -> None:
    raw = random.Random(seed).randbytes(2000 + 500 * seed)
    assert_sane(parse_message(raw), raw)


@pytest.mark.parametrize("seed", range(4))
def test_random_header_soup(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = b"=?<>@:;,\"'()\\\r\n\t abcQB*%\x00\x80\xff-/"
    headers = [
        b"Subject",
        b"From",
        b"To",
        b"Cc",
        b"Date",
        b"References",
        b"Content-Type",
        b"Content-Disposition",
    ]
    raw = (
        b"".join(
            rng.choice(headers)
            + b": "
            + bytes(rng.choice(alphabet) for _ in range(rng.randrange(80)))
            + b"\n"
            for _ in range(30)
        )
        + b"\nbody"
    )
    assert_sane(parse_message(raw), raw)


@pytest.mark.parametrize("name", sorted(path.name for path in MESSAGES.glob("*.eml")))
def test_every_truncation_and_byte_flip_of_fixtures(name: str) -> None:
    raw = load(name, crlf=True)
    rng = random.Random(name)
    for cut in range(0, len(raw), 7):
        assert_sane(parse_message(raw[:cut]), raw[:cut])
    for _ in range(50):
        mutated = bytearray(raw)
        for _ in range(5):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        assert_sane(parse_message(bytes(mutated)), bytes(mutated))


def test_absurdly_nested_multiparts() -> None:
    depth = 2000
    raw = (
        b"Subject: deep\nMessage-ID: <deep@x>\n"
        + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth))
        + b"Content-Type: text/plain\n\nhello\n"
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert (parsed.subject, parsed.message_id) == ("deep", "<deep@x>")


def test_hostile_headers_take_linear_time() -> None:
    size = 200_000
    hostile = [
        b"To: a" + b" " * size + b"x",  # once 76 s of regex backtracking
        b"To: " + b"<" * size,
        b"From: " + b"(" * size,  # nested comments: RecursionError in the stdlib
        b"Content-Type: application/x; name=" + b'";' * size,
        b"Subject: " + b"=?utf-8?q?" * size,
        b"References: " + b"<a@b> " * size,
    ]
    started = time.perf_counter()
    for header in hostile:
        raw = header + b"\n\nbody\n"
        assert_sane(parse_message(raw), raw)
    assert time.perf_counter() - started < 10


def test_many_parts_are_capped() -> None:
    parts = b"".join(b"--p\nContent-Type: application/x-thing\n\nx\n" for _ in range(3000))
    raw = b"Content-Type: multipart/mixed; boundary=p\n\n" + parts + b"--p--\n"
    parsed = parse_message(raw)
    assert 0 < len(parsed.attachments) <= 1000


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00" * 100,
        b"\n\n\n",
        b"Subject: only headers",
        b"Content-Type: multipart/mixed\n\n--x\nno boundary parameter\n",
        b'Content-Type: multipart/mixed; boundary=""\n\n--\n\n----\n',
        b"Content-Type: message/rfc822\n\nSubject: inner\n\ninner body\n",
        b"Content-Type: text/plain; charset=utf-7\n\n+2D3-\n",
        b"Content-Type: text/plain; charset=idna\n\n\xff\xfe\n",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 f\n#86)C\n`\nend\n",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: uuencode\n\nbegin 644 f\n!!!garbage\n",
        b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=4",
        b"Content-Disposition: attachment; filename*0*=x; filename*=y; filename*1=z\n\nbody",
        b"Content-Type: application/pdf; name*=bogus-charset''%FF%FE\nContent-Disposition: attachment\n\nx",
        b'From: "unterminated <a@x>\nTo: <<<>>>@@@,,,\nCc: ;;;::\n'
        b"Date: Fri, 99 Foo 99999 99:99:99 +9999\n\nx",
    ],
)
def test_malformed_messages_do_not_raise(raw: bytes) -> None:
    assert_sane(parse_message(raw), raw)


def test_utf7_body_decodes() -> None:
    raw = b"Content-Type: text/plain; charset=utf-7\n\nHi Mom -+Jjo--!\n"
    assert parse_message(raw).body_text == "Hi Mom -\u263a-!\n"


def test_iso_2022_jp_body_and_subject() -> None:
    body = "日本語のテキスト".encode("iso-2022-jp")
    assert body.isascii()
    subject = b"=?ISO-2022-JP?B?" + base64.b64encode("件名".encode("iso-2022-jp")) + b"?="
    raw = b"Subject: " + subject + b"\nContent-Type: text/plain; charset=ISO-2022-JP\n\n" + body
    parsed = parse_message(raw)
    assert (parsed.subject, parsed.body_text) == ("件名", "日本語のテキスト")


def test_non_bytes_input_is_tolerated() -> None:
    assert parse_message(bytearray(b"Subject: ba\n\nx")).subject == "ba"  # type: ignore[arg-type]
    assert parse_message(memoryview(b"Subject: mv\n\nx")).subject == "mv"  # type: ignore[arg-type]


def test_a_hostile_references_header_keeps_only_the_nearest_ancestors() -> None:
    ids = " ".join(f"<ref{n}@example.com>" for n in range(20_000))
    raw = f"Message-ID: <own@example.com>\r\nReferences: {ids}\r\nSubject: s\r\n\r\nbody\r\n".encode()
    parsed = parse_message(raw)
    assert len(parsed.references) == MAX_REFERENCES
    assert parsed.references[-1] == "<ref19999@example.com>"  # the parent stays
    assert len(thread_keys(parsed.message_id, parsed.in_reply_to, parsed.references)) == MAX_REFERENCES + 1
