"""Parsing the q search string."""

from __future__ import annotations

from datetime import date

import pytest

from imap2api.mail.search import SearchSyntaxError, TextTerm, parse_search


def test_plain_words_and_phrases() -> None:
    query = parse_search('lighthouse "exact phrase" e-mail')
    assert query.terms == [TextTerm("lighthouse"), TextTerm("exact phrase"), TextTerm("e-mail")]


def test_operators() -> None:
    query = parse_search(
        'from:ann to:"Bob Smith" subject:plan in:Sent has:attachment is:unread is:starred '
        "after:2024-01-02 before:2024/02/03"
    )
    assert query.terms == [
        TextTerm("ann", ("sender",)),
        TextTerm("Bob Smith", ("recipient",)),
        TextTerm("plan", ("subject",)),
    ]
    assert query.folders == [("Sent", False)]
    assert (query.has_attachment, query.seen, query.flagged) == (True, False, True)
    assert (query.after, query.before) == (date(2024, 1, 2), date(2024, 2, 3))


def test_negation() -> None:
    query = parse_search("-spam -from:boss -in:Trash -has:attachment -is:read")
    assert query.terms == [TextTerm("spam", (), True), TextTerm("boss", ("sender",), True)]
    assert query.folders == [("Trash", True)]
    assert (query.has_attachment, query.seen) == (False, False)


def test_unknown_operators_are_text() -> None:
    assert parse_search("foo:bar").terms == [TextTerm("foo:bar")]
    assert parse_search("http://example.com").terms == [TextTerm("http://example.com")]


def test_empty_and_bad_dates() -> None:
    assert parse_search("").is_empty and parse_search("   ").is_empty
    with pytest.raises(SearchSyntaxError):
        parse_search("after:yesterday")


def test_too_many_terms_are_refused() -> None:
    # Thousands of terms made one SQL expression too deep for SQLite (a 500): 50 is plenty.
    assert len(parse_search(" ".join(f"w{n}" for n in range(50))).terms) == 50
    for q in (" ".join(f"w{n}" for n in range(51)), "is:read " * 51, "in:x " * 1500):
        with pytest.raises(SearchSyntaxError, match="at most 50 words, phrases and operators"):
            parse_search(q)
