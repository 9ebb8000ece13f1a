"""The outbox: messages to send, claimed by one worker at a time with optimistic UPDATEs.

A row is ``queued`` (due at ``next_attempt_at``), ``sending`` while a worker holds it (until
``lease_expires_at``), then ``sent``, ``failed`` or ``cancelled``. A sent row whose copy is still
to be filed in the Sent folder (``sent_copy`` pending) is claimed the same way for that step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlmodel import Session, col, select

from imap2api.crud.common import Page, paginate
from imap2api.enums import SendStatus, SentCopy
from imap2api.errors import NotFound
from imap2api.models import OutboxMessage, utcnow

FINISHED = (SendStatus.SENT, SendStatus.FAILED, SendStatus.CANCELLED)


def as_list(value: str) -> list[str]:
    """A JSON list column's value."""
    items: list[str] = json.loads(value or "[]")
    return items


def get_message(session: Session, *, owner_id: int | None, outbox_id: int) -> OutboxMessage:
    """The outbox message with this id owned by ``owner_id`` (None: any owner's)."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFound()
    return row


def by_idempotency_key(session: Session, *, owner_id: int, key: str) -> OutboxMessage | None:
    """The owner's message sent with this Idempotency-Key, if any."""
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.owner_id == owner_id, OutboxMessage.idempotency_key == key)
    ).first()


def list_messages(
    session: Session,
    *,
    owner_id: int,
    page: int,
    page_size: int,
    status: str | None = None,
    server_id: int | None = None,
) -> Page[OutboxMessage]:
    """One page of the owner's outbox, newest first (optionally of one status or server)."""
    statement = select(OutboxMessage).where(OutboxMessage.owner_id == owner_id)
    if status:
        statement = statement.where(OutboxMessage.status == status)
    if server_id is not None:
        statement = statement.where(OutboxMessage.imap_server_id == server_id)
    statement = statement.order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
    return paginate(session, statement, page=page, page_size=page_size)


def _claim(session: Session, outbox_id: int, where: Any, values: dict[str, Any]) -> OutboxMessage | None:
    """Apply ``values`` to the row if ``where`` still holds (one claimer wins); the row, or None."""
    result = session.exec(
        update(OutboxMessage).where(col(OutboxMessage.id) == outbox_id, where).values(**values)
    )
    if not result.rowcount:
        return None
    row = session.get(OutboxMessage, outbox_id, populate_existing=True)
    return row


def claim_send(session: Session, *, outbox_id: int, lease_seconds: float) -> OutboxMessage | None:
    """Take a due queued message (or one whose sender died: its lease ran out) to send it now."""
    now = utcnow()
    due = or_(
        and_(
            col(OutboxMessage.status) == SendStatus.QUEUED,
            or_(col(OutboxMessage.next_attempt_at).is_(None), col(OutboxMessage.next_attempt_at) <= now),
        ),
        and_(col(OutboxMessage.status) == SendStatus.SENDING, col(OutboxMessage.lease_expires_at) <= now),
    )
    return _claim(
        session,
        outbox_id,
        due,
        {
            "status": SendStatus.SENDING.value,
            "attempts": OutboxMessage.attempts + 1,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        },
    )


def claim_copy(session: Session, *, outbox_id: int, lease_seconds: float) -> OutboxMessage | None:
    """Take a sent message whose copy is due to be filed in the Sent folder."""
    now = utcnow()
    due = and_(
        col(OutboxMessage.status) == SendStatus.SENT,
        col(OutboxMessage.sent_copy) == SentCopy.PENDING,
        or_(col(OutboxMessage.lease_expires_at).is_(None), col(OutboxMessage.lease_expires_at) <= now),
        or_(col(OutboxMessage.next_attempt_at).is_(None), col(OutboxMessage.next_attempt_at) <= now),
    )
    return _claim(
        session,
        outbox_id,
        due,
        {
            "copy_attempts": OutboxMessage.copy_attempts + 1,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "updated_at": now,
        },
    )


def cancel(session: Session, *, outbox_id: int) -> bool:
    """Cancel a queued message (not one being sent, nor a finished one); whether it was cancelled."""
    now = utcnow()
    result = session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == outbox_id, col(OutboxMessage.status) == SendStatus.QUEUED)
        .values(status=SendStatus.CANCELLED.value, raw=None, next_attempt_at=None, updated_at=now)
    )
    return bool(result.rowcount)


def claim_overdue(session: Session, *, grace_seconds: float, limit: int = 500) -> list[int]:
    """Messages whose job was lost, claimed for re-enqueueing (as ``crud.webhooks.claim_overdue_deliveries``).

    Lost: queued and due for ``grace_seconds`` already, sending by a worker whose lease ran out, or
    sent with a copy to file, due for ``grace_seconds``. Each claim moves ``next_attempt_at`` on by
    the grace period, so two schedulers never both re-enqueue one, and once per grace period at most.
    """
    now = utcnow()
    stale = now - timedelta(seconds=grace_seconds)
    overdue = or_(
        and_(col(OutboxMessage.status) == SendStatus.QUEUED, col(OutboxMessage.next_attempt_at) <= stale),
        and_(col(OutboxMessage.status) == SendStatus.SENDING, col(OutboxMessage.lease_expires_at) <= now),
        and_(
            col(OutboxMessage.status) == SendStatus.SENT,
            col(OutboxMessage.sent_copy) == SentCopy.PENDING,
            col(OutboxMessage.next_attempt_at) <= stale,
            or_(col(OutboxMessage.lease_expires_at).is_(None), col(OutboxMessage.lease_expires_at) <= now),
        ),
    )
    rows = session.exec(
        select(OutboxMessage.id, OutboxMessage.next_attempt_at)
        .where(overdue)
        .order_by(col(OutboxMessage.next_attempt_at))
        .limit(limit)
    ).all()
    claimed = []
    for outbox_id, due in rows:
        result = session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == outbox_id, col(OutboxMessage.next_attempt_at) == due)
            .values(next_attempt_at=now)
        )
        if result.rowcount:
            claimed.append(outbox_id or 0)
    return claimed


def sent_message_ids(session: Session, *, server_id: int, message_ids: Iterable[str]) -> set[str]:
    """Which of these Message-IDs are of messages this server's outbox sent (or is sending)."""
    ids = sorted({mid for mid in message_ids if mid})
    if not ids:
        return set()
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(
            session.exec(
                select(OutboxMessage.message_id).where(
                    OutboxMessage.imap_server_id == server_id,
                    col(OutboxMessage.message_id).in_(ids[start : start + 500]),
                    col(OutboxMessage.status).in_((SendStatus.SENDING, SendStatus.SENT)),
                )
            )
        )
    return found


def link_copies(session: Session, *, server_id: int, email_ids: dict[str, int]) -> None:
    """Note the mirrored copy (Message-ID → email id) of sent messages that have none yet."""
    for message_id, email_id in email_ids.items():
        session.exec(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.imap_server_id) == server_id,
                col(OutboxMessage.message_id) == message_id,
                col(OutboxMessage.email_id).is_(None),
            )
            .values(email_id=email_id)
        )


def prune_finished(session: Session, *, before: datetime) -> int:
    """Delete finished messages older than ``before`` (the bytes went when they finished)."""
    result = session.exec(
        delete(OutboxMessage).where(
            col(OutboxMessage.status).in_(FINISHED),
            col(OutboxMessage.updated_at) < before,
            or_(
                col(OutboxMessage.status) != SendStatus.SENT, col(OutboxMessage.sent_copy) != SentCopy.PENDING
            ),
        )
    )
    return result.rowcount or 0
