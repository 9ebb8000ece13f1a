"""Parsing the ``q`` search string: plain words, "phrases" and the Gmail operators people know."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

# word, "phrase", op:word, op:"phrase", each optionally negated with a leading "-".
_TOKEN = re.compile(r'(-)?(?:([A-Za-z]+):)?(?:"([^"]*)"?|(\S+))')
TEXT_FIELDS = {"from": "sender", "to": "recipient", "subject": "subject"}
# Each term is a condition in one SQL expression: thousands of them pass SQLite's expression-depth
# limit (a 500) and make PostgreSQL plan for long. No real search needs more.
MAX_TERMS = 50


class SearchSyntaxError(ValueError):
    """Raised when a search cannot be understood (e.g. ``after:yesterday``), or has too many terms."""


@dataclass(frozen=True)
class TextTerm:
    """A case-insensitive substring to find in ``fields`` (all text fields when empty)."""

    text: str
    fields: tuple[str, ...] = ()
    negated: bool = False


@dataclass
class SearchQuery:
    """A parsed ``q``: text terms plus structured filters (None: no condition)."""

    terms: list[TextTerm] = field(default_factory=list)
    folders: list[tuple[str, bool]] = field(default_factory=list)  # (name, negated)
    has_attachment: bool | None = None
    seen: bool | None = None
    flagged: bool | None = None
    after: date | None = None
    before: date | None = None

    @property
    def is_empty(self) -> bool:
        """Whether the query sets no condition at all."""
        return not (self.terms or self.folders) and all(
            value is None for value in (self.has_attachment, self.seen, self.flagged, self.after, self.before)
        )


def _date(value: str, operator: str) -> date:
    """``2024-11-27`` or ``2024/11/27``."""
    try:
        return date.fromisoformat(value.replace("/", "-"))
    except ValueError:
        raise SearchSyntaxError(f"{operator}: expects a date as YYYY-MM-DD, not {value!r}") from None


def parse_search(q: str) -> SearchQuery:
    """Parse a search string; unknown operators are searched for as plain text (``foo:bar``)."""
    query = SearchQuery()
    for count, match in enumerate(_TOKEN.finditer(q or ""), start=1):
        if count > MAX_TERMS:
            raise SearchSyntaxError(
                f"Too many search terms: at most {MAX_TERMS} words, phrases and operators are allowed."
            )
        negated = bool(match.group(1))
        operator = (match.group(2) or "").lower()
        quoted = match.group(3)
        value = quoted if quoted is not None else (match.group(4) or "")
        if operator and not value and quoted is None:
            continue
        if operator in TEXT_FIELDS:
            if value.strip():
                query.terms.append(TextTerm(value, (TEXT_FIELDS[operator],), negated))
        elif operator == "in":
            query.folders.append((value, negated))
        elif operator == "has" and value.lower() in ("attachment", "attachments"):
            query.has_attachment = not negated
        elif operator == "is" and value.lower() in ("unread", "read", "starred", "flagged"):
            if value.lower() in ("unread", "read"):
                query.seen = (value.lower() == "read") != negated
            else:
                query.flagged = not negated
        elif operator in ("after", "since"):
            query.after = _date(value, operator)
        elif operator in ("before", "until"):
            query.before = _date(value, operator)
        else:
            text = f"{match.group(2)}:{value}" if operator else value
            if text.strip():
                query.terms.append(TextTerm(text, (), negated))
    return query
