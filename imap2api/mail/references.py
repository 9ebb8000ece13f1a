"""Message-ID lists (Message-ID, In-Reply-To, References) and the keys that link a message into a thread."""

from __future__ import annotations

import re

from imap2api.mail.headers import clean

_BRACKETED = re.compile(r"<([^<>]*)>")
# An id written without brackets: something@something, nothing that could be prose.
_BARE_ID = re.compile(r'[^\s<>()",;@]+@[^\s<>()",;@]+')


def parse_msg_ids(value: str | None) -> list[str]:
    """The ``<id>`` values of a header in order, de-duplicated; garbage, folding and bare ids tolerated."""
    if not value or not isinstance(value, str):
        return []
    ids: dict[str, None] = {}
    for match in _BRACKETED.finditer(value):
        inner = "".join(clean(match.group(1)).split())  # folding inside an id; no control characters
        if inner:
            ids[f"<{inner}>"] = None
    if ids:
        return list(ids)
    # No complete <...>: accept only a plain list of bare ids, never words of a sentence.
    tokens = clean(value).replace("<", " ").replace(">", " ").replace(",", " ").split()
    if tokens and all(_BARE_ID.fullmatch(token) for token in tokens):
        return list(dict.fromkeys(f"<{token}>" for token in tokens))
    return []


def thread_keys(message_id: str, in_reply_to: str, references: list[str]) -> list[str]:
    """The ids linking a message into a thread: references, in-reply-to, own id; stripped, de-duplicated."""
    keys: dict[str, None] = {}
    for key in (*(references or ()), in_reply_to, message_id):
        key = (key or "").strip()
        if key:
            keys[key] = None
    return list(keys)
