"""One batch of new messages: fetched and parsed (IMAP, CPU), then stored in one transaction (database)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from imap2api import pubsub
from imap2api.config import settings
from imap2api.crud import mirror as crud_mirror
from imap2api.crud import outbox as crud_outbox
from imap2api.crud import threads as crud_threads
from imap2api.db import session_scope
from imap2api.enums import EventType
from imap2api.mail import ParsedMessage, parse_message, thread_keys
from imap2api.models import utcnow
from imap2api.sync import moves
from imap2api.sync.imap import flags_text, uid_fetch, uid_set
from imap2api.sync.lease import keep_lease
from imap2api.sync.progress import RunState


def _fetch(client: IMAPClient, batch: list[tuple[int, int]]) -> dict[int, dict[bytes, Any]]:
    """Fetch bodies without setting \\Seen (BODY.PEEK); oversized messages only in part."""
    limit = settings.sync_max_message_bytes
    whole = [uid for uid, size in batch if size <= limit]
    partial = [uid for uid, size in batch if size > limit]
    items = ["BODY.PEEK[]", "INTERNALDATE", "FLAGS", "RFC822.SIZE"]
    if client.has_capability("CONDSTORE"):
        items.append("MODSEQ")
    if client.has_capability("OBJECTID"):
        items.append("EMAILID")  # RFC 8474: what recognises the message after a move
    fetched = uid_fetch(client, uid_set(whole), items) if whole else {}
    if partial:
        # Headers and the leading text parts of a huge message, never its whole attachment.
        items = [f"BODY.PEEK[]<0.{limit}>", *items[1:]]
        for uid, data in uid_fetch(client, uid_set(partial), items).items():
            data[b"BODY[]"] = data.pop(b"BODY[]<0>", b"")
            fetched[uid] = data
    return fetched


def object_id(value: Any) -> str:
    """An EMAILID as FETCH answers it (``(M6d99ac3275bb4e)``, parsed to a tuple), as text; "" if none."""
    if isinstance(value, tuple):
        value = value[0] if value else b""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    # RFC 8474: 1 to 255 characters of A-Z a-z 0-9 _ -; anything else is not an id to trust.
    text = value if isinstance(value, str) else ""
    return (
        text if 0 < len(text) <= 255 and all(c.isascii() and (c.isalnum() or c in "_-") for c in text) else ""
    )


def email_row(
    parsed: ParsedMessage,
    data: dict[bytes, Any],
    *,
    state: RunState,
    folder_id: int,
    folder_name: str,
    uidvalidity: int,
    uid: int,
) -> dict[str, Any]:
    """The emails-table row for a parsed message."""
    internal = data.get(b"INTERNALDATE")
    if isinstance(internal, datetime) and internal.tzinfo is None:
        internal = internal.replace(tzinfo=UTC)
    now = utcnow()
    modseq = data.get(b"MODSEQ")
    return {
        "owner_id": state.owner_id,
        "imap_server_id": state.server_id,
        "folder_id": folder_id,
        "folder": folder_name,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "modseq": int(modseq[0]) if isinstance(modseq, tuple) else modseq,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": " ".join(parsed.references),
        "subject": parsed.subject,
        "sender": parsed.sender,
        "sender_name": parsed.sender_name,
        "recipient": parsed.recipient,
        "recipient_names": parsed.recipient_names,
        "cc": parsed.cc,
        # Date header first; INTERNALDATE when it is missing or nonsense; never null.
        "date": parsed.date or internal or now,
        "internal_date": internal,
        **crud_mirror.flag_columns(flags_text(data.get(b"FLAGS", ()))),
        "size": int(data.get(b"RFC822.SIZE") or parsed.size),
        "body_text": parsed.body_text,
        "body_html": parsed.body_html,
        "thread_id": "",
        "object_id": object_id(data.get(b"EMAILID")),
        "has_attachments": parsed.has_attachments,
        "announced": False,
        "created_at": now,
        "updated_at": now,
    }


@dataclass
class PreparedBatch:
    """A fetched and parsed batch, ready to be stored (no database work done yet)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[list[dict[str, Any]]] = field(default_factory=list)
    keys: list[list[str]] = field(default_factory=list)
    size: int = 0


Fetched = list[tuple[int, dict[bytes, Any]]]  # (uid, FETCH answer) in batch order


def fetch_batch(client: IMAPClient, batch: list[tuple[int, int]]) -> Fetched:
    """Fetch one batch's messages (IMAP only); a message expunged between SEARCH and FETCH is left out."""
    fetched = _fetch(client, batch)
    return [(uid, fetched[uid]) for uid, _ in batch if uid in fetched]


def parse_batch(
    state: RunState, fetched: Fetched, *, folder_id: int, folder_name: str, uidvalidity: int
) -> PreparedBatch:
    """Parse one fetched batch into rows: CPU work only, so it can overlap the previous store."""
    prepared = PreparedBatch()
    for uid, data in fetched:
        raw = data.get(b"BODY[]") or b""
        prepared.size += len(raw)
        parsed = parse_message(raw, max_body_chars=settings.sync_max_body_chars)
        prepared.rows.append(
            email_row(
                parsed,
                data,
                state=state,
                folder_id=folder_id,
                folder_name=folder_name,
                uidvalidity=uidvalidity,
                uid=uid,
            )
        )
        prepared.attachments.append(
            [
                {
                    "filename": a.filename,
                    "content_type": a.content_type[:255],
                    "size": a.size,
                    "content_id": a.content_id,
                    "inline": a.inline,
                    "section": a.section,
                    "encoding": a.encoding,
                }
                for a in parsed.attachments
            ]
        )
        prepared.keys.append(thread_keys(parsed.message_id, parsed.in_reply_to, parsed.references))
    return prepared


def store_batch(state: RunState, prepared: PreparedBatch, *, previous_uidnext: int | None) -> None:
    """Store a prepared batch: rows, thread keys, events and progress commit together.

    A row that is a message held by this run (gone from another folder: sync/moves.py) is not
    inserted: the held row moves to it, keeping its id and thread.
    """
    fetched = len(prepared.rows)
    prepared, moved = _take_moves(state, prepared)
    rows = prepared.rows
    with session_scope() as session:
        # First: a worker that lost the lease, or whose server was deleted, stores nothing more.
        keep_lease(session, server_id=state.server_id, holder=state.holder)
        assignment = crud_threads.assign_threads(
            session, server_id=state.server_id, keys_per_message=prepared.keys
        )
        for row, thread_id in zip(rows, assignment.thread_ids, strict=True):
            row["thread_id"] = thread_id
        # The sender's own mail, sent by imap2api and filed in Sent: email.sent announced it already.
        own = crud_outbox.sent_message_ids(
            session, server_id=state.server_id, message_ids=[row["message_id"] for row in rows]
        )
        arrivals = _arrivals(session, state, rows, previous_uidnext, own=own)
        for row in arrivals:
            row["announced"] = True
        ids = crud_mirror.insert_emails(session, rows=rows, attachments=prepared.attachments)
        id_by_row = {id(row): email_id for row, email_id in zip(rows, ids, strict=True)}
        if own:
            copies = {row["message_id"]: id_by_row[id(row)] for row in rows if row["message_id"] in own}
            crud_outbox.link_copies(session, server_id=state.server_id, email_ids=copies)
        _record_events(session, state, id_by_row, arrivals, assignment)
        moves.store_moves(session, state, moved)
        state.store_progress(
            session,
            progress_done=state.done + fetched,
            progress_total=state.total,
            messages_new=state.new + len(rows),
            messages_updated=state.updated + len(moved),
        )
    state.add_done(fetched, prepared.size, moved=len(moved))
    # Live subscribers hear of it only now that the rows are committed and readable.
    for row in arrivals:
        pubsub.publish(pubsub.email_channel(state.server_id), {"id": id_by_row[id(row)]})
    state.publish_progress()  # add_done told the progress listener


def _take_moves(
    state: RunState, prepared: PreparedBatch
) -> tuple[PreparedBatch, list[tuple[dict[str, Any], moves.Vanished]]]:
    """The batch without the rows that are held messages, and those rows with what they match."""
    if not state.moves.held:
        return prepared, []
    rest = PreparedBatch(size=prepared.size)
    moved = []
    for row, attachments, keys in zip(prepared.rows, prepared.attachments, prepared.keys, strict=True):
        vanished = state.moves.take(row)
        if vanished is not None:
            moved.append((row, vanished))
        else:
            rest.rows.append(row)
            rest.attachments.append(attachments)
            rest.keys.append(keys)
    return rest, moved


def _arrivals(
    session: Any,
    state: RunState,
    rows: list[dict[str, Any]],
    previous_uidnext: int | None,
    *,
    own: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The rows that are new mail: above the folder's previous UIDNEXT, not moved, not seen before,
    not sent by imap2api (``own``: their Message-IDs)."""
    if previous_uidnext is None:
        return []  # first sync of this folder (generation): nothing here is news
    candidates = [row for row in rows if row["uid"] >= previous_uidnext]
    known = crud_mirror.known_message_ids(
        session, server_id=state.server_id, message_ids=[row["message_id"] for row in candidates]
    )
    arrivals = []
    for row in candidates:
        mid = row["message_id"]
        if mid and (mid in known or mid in state.removed_message_ids or mid in state.announced_message_ids):
            continue  # a move or a copy of mail already mirrored
        if mid in own:
            continue
        if mid:
            state.announced_message_ids.add(mid)
        arrivals.append(row)
    return arrivals


def _record_events(
    session: Any,
    state: RunState,
    id_by_row: dict[int, int],
    arrivals: list[dict[str, Any]],
    assignment: crud_threads.ThreadAssignment,
) -> None:
    """Write email.received and thread.updated events into the outbox."""
    if not arrivals and not assignment.merged:
        return
    touched = {row["thread_id"] for row in arrivals} | set(assignment.merged.values())
    counts = crud_threads.thread_counts(session, server_id=state.server_id, thread_ids=touched)
    added: dict[str, list[int]] = {}
    for row in arrivals:
        email_id = id_by_row[id(row)]
        added.setdefault(row["thread_id"], []).append(email_id)
        state.record_event(
            session,
            EventType.EMAIL_RECEIVED,
            {
                "id": email_id,
                "message_id": row["message_id"],
                "subject": row["subject"],
                "sender": row["sender"],
                "recipient": row["recipient"],
                "date": row["date"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "folder": row["folder"],
                "thread_id": row["thread_id"],
                "thread_count": counts.get(row["thread_id"], 1),
                "imap_server": state.server_id,
            },
        )
    merged_into: dict[str, list[str]] = {}
    for old, new in assignment.merged.items():
        merged_into.setdefault(new, []).append(old)
    for thread_id in sorted(touched):
        grew = thread_id in assignment.existing and thread_id in added
        if not grew and thread_id not in merged_into:
            continue
        state.record_event(
            session,
            EventType.THREAD_UPDATED,
            {
                "thread_id": thread_id,
                "thread_count": counts.get(thread_id, 0),
                "email_ids": added.get(thread_id, []),
                "merged_thread_ids": sorted(merged_into.get(thread_id, [])),
                "imap_server": state.server_id,
            },
        )
