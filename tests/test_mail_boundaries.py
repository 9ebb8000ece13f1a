"""The parser's private feedparser (no regex compiled per boundary) reads mail as the stdlib does."""

from __future__ import annotations

import email
import re

import pytest

from imap2api.mail.parse import _BoundaryMatch, _FeedparserRe, _message_from_bytes


def _multipart(boundary: str, *, close: str = "--", after: str = "", inner: str | None = None) -> bytes:
    nested = (
        f'--{boundary}\r\nContent-Type: multipart/alternative; boundary="{inner}"\r\n\r\n'
        f"--{inner}\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--{inner}--\r\n"
        if inner
        else ""
    )
    return (
        f'Subject: b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"preamble\r\n--{boundary}{after}\r\nContent-Type: text/plain\r\n\r\none\r\n"
        f"--{boundary}x not a boundary\r\n"
        f"--{boundary}\r\n--{boundary}\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n{nested}"
        f"--{boundary}{close}{after}\r\nepilogue\r\n"
    ).encode()


@pytest.mark.parametrize(
    "raw",
    [
        _multipart("simple"),
        _multipart("a.b+c*d?(e)[f]{g}|h^$\\i"),  # every regex metacharacter
        _multipart("----=_Part_1_2.3", after=" \t"),  # whitespace after the boundary
        _multipart("x", close=""),  # no closing boundary
        _multipart("outer", inner="outer-inner"),  # a nested boundary that extends the outer one
        _multipart("ünï"),
        b"Subject: plain\r\n\r\nno parts at all\r\n",
    ],
)
def test_the_private_feedparser_gives_the_stdlib_tree(raw: bytes) -> None:
    ours, stdlib = _message_from_bytes(raw), email.message_from_bytes(raw)
    assert ours.as_string() == stdlib.as_string()
    assert [
        (part.get_content_type(), part.get_payload() if not part.is_multipart() else None)
        for part in ours.walk()
    ] == [
        (part.get_content_type(), part.get_payload() if not part.is_multipart() else None)
        for part in stdlib.walk()
    ]
    assert (ours.preamble, ours.epilogue, len(ours.defects)) == (
        stdlib.preamble,
        stdlib.epilogue,
        len(stdlib.defects),
    )


def test_only_the_boundary_pattern_is_replaced() -> None:
    shim = _FeedparserRe()
    separator = "--a.b(c)"
    pattern = "(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    assert isinstance(shim.compile(pattern), _BoundaryMatch)
    assert isinstance(shim.compile(r"\r\n|\r|\n"), re.Pattern)
    assert isinstance(shim.compile(pattern, re.IGNORECASE), re.Pattern)
    assert shim.escape is re.escape
