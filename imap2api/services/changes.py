"""The change feed, read: which of the caller's emails were created, updated or destroyed since a cursor.

As JMAP's ``Email/changes``: each email at most once per page, in its latest state (a move or a
flag change is an update); without a cursor, the current cursor and nothing else, so a client
starts from now. A page ends inside a sequence when the limit says so (``has_more``); the next page
starts right after its last email. See ``imap2api.crud.changes`` for why nothing is ever missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from imap2api.crud import changes as crud_changes
from imap2api.errors import CursorExpired, ValidationFailed
from imap2api.services.principal import Principal

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INVALID_CURSOR = "Not a valid cursor."


@dataclass(frozen=True)
class ChangeFeed:
    """One page of changes and the cursor to continue from."""

    cursor: str
    has_more: bool = False
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    destroyed: list[int] = field(default_factory=list)


def _limit(limit: int | None) -> int:
    """The page's size: 1 to MAX_LIMIT, DEFAULT_LIMIT when unset."""
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise ValidationFailed({"limit": ["Ensure this value is greater than or equal to 1."]})
    if limit > MAX_LIMIT:
        raise ValidationFailed({"limit": [f"Ensure this value is less than or equal to {MAX_LIMIT}."]})
    return limit


def _expired(position: crud_changes.Position, counter: crud_changes.Counter) -> bool:
    """Whether tombstones a reader at ``position`` still needs were pruned, or it is from the future
    (another database, or one restored from a backup)."""
    pruned = counter.pruned_seq > 0 and position < crud_changes.Position(counter.pruned_seq)
    return pruned or position.seq > counter.value


MAX_CURSOR_CHARS = 100


def changes(session: Session, actor: Principal, since: str | None, limit: int | None = None) -> ChangeFeed:
    """The caller's changes after ``since`` (None: the current cursor only), at most ``limit`` emails."""
    assert actor.user_id is not None
    size = _limit(limit)
    # The committed counter first: every sequence up to it is committed, and none above is read.
    counter = crud_changes.counter(session, actor.user_id)
    if since is None:
        return ChangeFeed(cursor=crud_changes.encode_cursor(crud_changes.Position(counter.value)))
    # A cursor is ~30 characters: anything much longer is refused before it is decoded.
    position = crud_changes.decode_cursor(since) if len(since) <= MAX_CURSOR_CHARS else None
    if position is None:
        raise ValidationFailed({"since": [INVALID_CURSOR]})
    if _expired(position, counter):
        raise CursorExpired()
    entries = crud_changes.entries_after(
        session, owner_id=actor.user_id, after=position, upto=counter.value, limit=size + 1
    )
    # Checked again after the reads: a prune that removed tombstones they needed is seen by now.
    if _expired(position, crud_changes.counter(session, actor.user_id)):
        raise CursorExpired()
    page, has_more = entries[:size], len(entries) > size
    feed = ChangeFeed(
        cursor=crud_changes.encode_cursor(
            page[-1].position if has_more else crud_changes.Position(counter.value)
        ),
        has_more=has_more,
    )
    for entry in page:
        email_id = entry.position.email_id
        if entry.created_seq is None:
            feed.destroyed.append(email_id)
        elif crud_changes.Position(entry.created_seq, email_id) > position:
            feed.created.append(email_id)
        else:
            feed.updated.append(email_id)
    return feed
