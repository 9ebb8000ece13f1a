"""Message-ID lists (In-Reply-To, References) and the keys that link a message into a thread."""

from __future__ import annotations

import re

_BRACKETED = re.compile(r"<([^<>\s]+)>")


def parse_msg_ids(value: str | None) -> list[str]:
    """The ``<id>`` values in a header, in order, de-duplicated; tolerant of garbage and folding.

    A header holding one bare id without brackets (seen from broken mailers) yields that id.
    """
    if not value:
        return []
    text = value.replace("\r", " ").replace("\n", " ")
    ids = [f"<{match}>" for match in _BRACKETED.findall(text)]
    if not ids:
        bare = text.strip()
        if bare and " " not in bare and "@" in bare:
            ids = [f"<{bare.strip('<>')}>"]
    return list(dict.fromkeys(ids))


def thread_keys(message_id: str, in_reply_to: str, references: list[str]) -> list[str]:
    """The ids linking a message into a thread: its own id, then the ids it refers to."""
    keys = [message_id.strip()] if message_id.strip() else []
    keys += [ref.strip() for ref in references if ref.strip()]
    if in_reply_to.strip():
        keys.append(in_reply_to.strip())
    return list(dict.fromkeys(keys))
