"""The outbox's worker side: one step of one message per ``send_email`` job.

A step claims the row (an optimistic UPDATE: one worker at a time), then either sends it over
SMTP or, once sent, files its copy in the Sent folder:

- sent: ``sent``, with the server's answer and ``email.sent`` in the same transaction; then,
  in the same job, ``\\Answered`` on the email it replies to and the copy filed (unless the
  provider files it: ``save_sent`` false, ``sent_copy`` ``by_provider``);
- a temporary failure (4xx, connection, timeout): ``queued`` again with ``next_attempt_at``
  (``SEND_RETRY_BASE_SECONDS`` doubling, jittered, for ``SEND_RETRY_SPAN_SECONDS``), and the job
  re-sends itself with that delay; past the span it is final;
- a final failure (5xx, login refused, no STARTTLS...): ``failed``, with ``email.send_failed``.

Delivery is at least once: a worker dying between the SMTP server's 250 and the commit leaves a
``sending`` row whose lease runs out, and it is sent again, with the same Message-ID (which lets
receivers such as Gmail drop the duplicate). The bytes are dropped once nothing needs them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import events as crud_events
from imap2api.crud import outbox as crud_outbox
from imap2api.db import session_scope
from imap2api.enums import AuthType, EventType, SendStatus, SentCopy
from imap2api.errors import Imap2ApiError
from imap2api.mail.compose import without_bcc
from imap2api.models import ImapServer, OutboxMessage, utcnow
from imap2api.oauth2 import tokens
from imap2api.security import DecryptionError, decrypt_secret
from imap2api.sending.smtp import Delivered, SmtpAccount, SmtpFailure, deliver
from imap2api.services import actions, jobs
from imap2api.services.principal import Principal
from imap2api.webhooks.retry import backoff_seconds

log = logging.getLogger("imap2api.sending")

COPY_ATTEMPTS = 6  # filing the copy is retried this often (the mail is sent: nothing else waits on it)
COPY_RETRY_BASE_SECONDS = 30.0
# Failures of filing the copy that no retry mends.
COPY_FINAL_CODES = {
    "NO_SENT_FOLDER",
    "NOT_FOUND",
    "READ_ONLY_FOLDER",
    "SECRET_KEY_CHANGED",
    "IMAP_AUTH_FAILED",
    "OAUTH2_REAUTH_REQUIRED",
    "OAUTH2_NOT_CONNECTED",
}


@dataclass(frozen=True)
class Step:
    """What a job did, and when the message's next step is due (None: no further step)."""

    outcome: str
    retry_in: float | None = None


def lease_seconds() -> float:
    """How long a worker holds a message it is sending before another may take it over."""
    return settings.smtp_deadline_seconds + 60


def process(outbox_id: int) -> Step:
    """Do the message's due step: send it, or file its copy."""
    with session_scope() as session:
        row = crud_outbox.claim_send(session, outbox_id=outbox_id, lease_seconds=lease_seconds())
        server = session.get(ImapServer, row.imap_server_id) if row is not None else None
    if row is not None:
        return _send(row, server)
    with session_scope() as session:
        row = crud_outbox.claim_copy(session, outbox_id=outbox_id, lease_seconds=lease_seconds())
    if row is not None:
        return _file_copy(row)
    return Step("nothing due")


def smtp_account(server: ImapServer) -> SmtpAccount:
    """The server's SMTP login: its own password, else as IMAP logs in (the IMAP password, or OAuth2)."""
    oauth2 = server.auth_type == AuthType.OAUTH2 and not server.smtp_password_encrypted
    try:
        password = (
            "" if oauth2 else decrypt_secret(server.smtp_password_encrypted or server.password_encrypted)
        )
    except DecryptionError as exc:
        raise SmtpFailure("SECRET_KEY_CHANGED", str(exc), temporary=False) from exc
    return SmtpAccount(
        host=server.smtp_host,
        port=server.smtp_port,
        security=server.smtp_security,
        username=server.smtp_username or server.username,
        password=password,
        auth=server.smtp_auth,
        tls_verify=server.tls_verify,
        bearer=tokens.bearer(server.id or 0) if oauth2 else None,
        tls_ca_cert=server.tls_ca_cert,
    )


def _send(row: OutboxMessage, server: ImapServer | None) -> Step:
    """Send a claimed message and store what came of it."""
    try:
        if server is None or not server.smtp_host:
            raise SmtpFailure(
                "SMTP_NOT_CONFIGURED", "the IMAP server has no SMTP host any more", temporary=False
            )
        delivered = deliver(
            smtp_account(server),
            envelope_from=row.envelope_from,
            recipients=crud_outbox.as_list(row.envelope_to),
            message=without_bcc(row.raw or b""),
            smtputf8=row.smtputf8,
            timeout=settings.smtp_timeout_seconds,
            deadline=settings.smtp_deadline_seconds,
        )
    except SmtpFailure as failure:
        return _failed(row, failure)
    _sent(row, delivered, save=bool(server.save_sent))
    _mark_answered(row)
    if server.save_sent:
        return _file_copy(row)
    return Step("sent")


def _sent(row: OutboxMessage, delivered: Delivered, *, save: bool) -> None:
    """Store the success and its event, in one transaction."""
    now = utcnow()
    with session_scope() as session:
        stored = crud_outbox.get_message(session, owner_id=None, outbox_id=row.id or 0)
        stored.status = SendStatus.SENT.value
        stored.sent_at = stored.updated_at = now
        stored.smtp_response = delivered.response
        refused = [f"{address}: {answer}" for address, answer in delivered.refused.items()]
        stored.refused = json.dumps(refused, ensure_ascii=False)
        stored.error = stored.error_code = ""
        stored.lease_expires_at = None
        stored.sent_copy = (SentCopy.PENDING if save else SentCopy.BY_PROVIDER).value
        stored.next_attempt_at = now if save else None
        if not save:
            stored.raw = None
        session.add(stored)
        _event(session, stored, EventType.EMAIL_SENT)
    log.info("outbox message %s sent: %s", row.id, delivered.response[:200])


def _failed(row: OutboxMessage, failure: SmtpFailure) -> Step:
    """A temporary failure queues the message again (while the retry span lasts); else it fails."""
    now = utcnow()
    retry_in = None
    if failure.temporary:
        wait = backoff_seconds(
            row.attempts, base=settings.send_retry_base_seconds, span=settings.send_retry_span_seconds
        )
        if (now - row.created_at).total_seconds() + wait <= settings.send_retry_span_seconds:
            retry_in = wait
    with session_scope() as session:
        stored = crud_outbox.get_message(session, owner_id=None, outbox_id=row.id or 0)
        if stored.status != SendStatus.SENDING:
            return Step("taken over")  # our lease ran out meanwhile: another worker has it
        stored.error, stored.error_code, stored.smtp_response = str(failure), failure.code, failure.reply
        stored.lease_expires_at = None
        stored.updated_at = now
        if retry_in is not None:
            stored.status = SendStatus.QUEUED.value
            stored.next_attempt_at = now + timedelta(seconds=retry_in)
        else:
            stored.status = SendStatus.FAILED.value
            stored.next_attempt_at = None
            stored.raw = None
            _event(session, stored, EventType.EMAIL_SEND_FAILED)
        session.add(stored)
    log.warning("outbox message %s: %s (%s)", row.id, failure, "retried" if retry_in else "final")
    return Step("retrying" if retry_in is not None else "failed", retry_in)


def _mark_answered(row: OutboxMessage) -> None:
    """Set ``\\Answered`` on the email a reply answers (its mirror follows); a failure only logs."""
    if row.reply_to_email_id is None:
        return
    change = actions.Action(actions.MODIFY, flags=actions.flag_change(answered=True))
    try:
        (outcome,) = actions.act(Principal.system(), [row.reply_to_email_id], change)
    except Imap2ApiError as exc:
        log.warning("could not mark email %s answered: %s", row.reply_to_email_id, exc)
        return
    if outcome.status == "failed":
        log.warning("could not mark email %s answered: %s", row.reply_to_email_id, outcome.detail)


def _file_copy(row: OutboxMessage) -> Step:
    """APPEND the copy to the Sent folder (services.actions.file_sent); retried a few times."""
    with session_scope() as session:
        stored = crud_outbox.get_message(session, owner_id=None, outbox_id=row.id or 0)
        raw, attempts = stored.raw, stored.copy_attempts
    try:
        if raw is None:
            raise Imap2ApiError("the message's bytes are gone")
        actions.file_sent(row.imap_server_id, raw)
    except Imap2ApiError as exc:
        final = exc.code in COPY_FINAL_CODES or attempts >= COPY_ATTEMPTS or raw is None
        wait = None if final else backoff_seconds(attempts, base=COPY_RETRY_BASE_SECONDS, span=6 * 3600)
        _copy_outcome(row, error=exc, retry_in=wait)
        log.warning("outbox message %s: its copy was not filed: %s", row.id, exc.message)
        return Step("copy failed" if final else "copy retrying", wait)
    _copy_outcome(row)
    return Step("sent and filed")


def _copy_outcome(
    row: OutboxMessage,
    *,
    error: Imap2ApiError | None = None,
    retry_in: float | None = None,
) -> None:
    """Store what came of filing the copy."""
    now = utcnow()
    with session_scope() as session:
        stored = crud_outbox.get_message(session, owner_id=None, outbox_id=row.id or 0)
        stored.lease_expires_at = None
        stored.updated_at = now
        if error is None:
            stored.sent_copy = SentCopy.SAVED.value  # email_id: set by the sync of Sent (link_copies)
        else:
            stored.error = f"the copy was not filed in the Sent folder: {error.message}"[:1000]
            stored.error_code = error.code
            if retry_in is not None:
                stored.next_attempt_at = now + timedelta(seconds=retry_in)
                session.add(stored)
                return
            stored.sent_copy = SentCopy.FAILED.value
        stored.next_attempt_at = None
        stored.raw = None
        session.add(stored)


def _event(session: Session, row: OutboxMessage, type: EventType) -> None:
    """Record ``email.sent`` or ``email.send_failed`` in the event outbox, and relay it after commit."""
    # No "id": in every other email.* event that is an email's, and a message sent is not one (yet).
    data = {
        "outbox_message": row.id,
        "imap_server": row.imap_server_id,
        "message_id": row.message_id,
        "subject": row.subject,
        "to": crud_outbox.as_list(row.to),
        "cc": crud_outbox.as_list(row.cc),
        "attempts": row.attempts,
        "smtp_response": row.smtp_response,
    }
    if type == EventType.EMAIL_SENT:
        data["refused"] = crud_outbox.as_list(row.refused)
        data["reply_to_email"] = row.reply_to_email_id
    else:
        data["error"], data["error_code"] = row.error, row.error_code
    crud_events.record_event(
        session, owner_id=row.owner_id, server_id=row.imap_server_id, type=type, data=data
    )
    jobs.enqueue(session, jobs.dispatch_job())
