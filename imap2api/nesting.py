"""How deeply JSON and GraphQL documents nest, measured before they are parsed.

Parsers recurse once per level: ``[[[[…`` a few thousand deep ends in a RecursionError (a 500)
before anything looks at the content. No legitimate request of this API nests more than a
handful of levels, so ``MAX_DEPTH`` is far above need and far below the stack's limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64

# Strings are skipped whole (a bracket inside one does not nest), then brackets counted. A string's
# closing quote is optional: an unterminated one then ends the scan instead of being retried from every
# later quote, which took quadratic time (a hostile 1 MB body would hold the event loop for hours).
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)
_JSON_BYTES = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)
_GRAPHQL_TOKENS = re.compile(
    r'"""(?:\\"""|[^"]|"(?!""))*(?:""")?|"(?:[^"\\\n\r]|\\.)*"?|#[^\n\r]*|[\[\]{}()]'
)


class TooDeeplyNested(ValueError):
    """Raised when a document nests deeper than ``MAX_DEPTH``."""

    def __init__(self, what: str, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"{what} is nested more than {limit} levels deep")
        self.limit = limit


def _exceeds(
    tokens: re.Pattern[Any], text: Any, opening: frozenset[Any], closing: frozenset[Any], limit: int
) -> bool:
    """Whether brackets outside strings (and comments) nest deeper than ``limit``."""
    # Fast path, at C speed: fewer opening brackets than the limit cannot nest deeper than it.
    if sum(text.count(bracket) for bracket in opening) <= limit:
        return False
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in opening:
            depth += 1
            if depth > limit:
                return True
        elif token in closing:
            depth -= 1
    return False


def check_json_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    """Raise ``TooDeeplyNested`` when a JSON text nests deeper than ``limit``."""
    if isinstance(text, bytes):
        found = _exceeds(_JSON_BYTES, text, frozenset((b"[", b"{")), frozenset((b"]", b"}")), limit)
    else:
        found = _exceeds(_JSON_TOKENS, text, frozenset("[{"), frozenset("]}"), limit)
    if found:
        raise TooDeeplyNested("the JSON document", limit)


def check_graphql_depth(source: str, limit: int = MAX_DEPTH) -> None:
    """Raise ``TooDeeplyNested`` when a GraphQL document nests deeper than ``limit`` (selections, values)."""
    if _exceeds(_GRAPHQL_TOKENS, source, frozenset("[{("), frozenset("]})"), limit):
        raise TooDeeplyNested("the GraphQL document", limit)


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads``, refusing documents nested deeper than ``limit`` (``TooDeeplyNested``)."""
    check_json_depth(text, limit)
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen below the limit; kept so that no stack overflow becomes a 500
        raise TooDeeplyNested("the JSON document", limit) from None
