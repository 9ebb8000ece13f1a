"""The sending actor: a thin shell over ``imap2api.sending.outbox``.

``send_email`` does one message's due step and re-sends itself with the delay of the next one (a
retry, or filing the copy again); a lost message is re-enqueued by ``send_tick`` from the scheduler.
"""

from __future__ import annotations

import logging

from imap2api.crud import outbox as crud_outbox
from imap2api.db import session_scope
from imap2api.sending import outbox
from imap2api.services import jobs

log = logging.getLogger("imap2api.workers")

REQUEUE_GRACE_SECONDS = 60.0


def send_email(outbox_id: int) -> None:
    """Do the message's due step; schedule the next one when there is one."""
    step = outbox.process(outbox_id)
    if step.retry_in is not None:
        jobs.send(jobs.send_job(outbox_id, delay_ms=int(step.retry_in * 1000)))


def send_tick() -> None:
    """The scheduler's share: re-enqueue the messages whose job was lost."""
    with session_scope() as session:
        ids = crud_outbox.claim_overdue(session, grace_seconds=REQUEUE_GRACE_SECONDS)
    for outbox_id in ids:
        jobs.send(jobs.send_job(outbox_id))
    if ids:
        log.info("re-enqueued %d overdue outbox messages", len(ids))
