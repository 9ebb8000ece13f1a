"""Sending mail: compose a message, check its bounds, queue it in the outbox; read and cancel.

``submit`` does, in order: the Idempotency-Key (the same key and request answer the message
already queued, and send nothing; the same key with another request is refused), the server
and the originals named (a reply or forward must be of an email of the same server), the
addresses and attachments, composition (imap2api.mail.compose), the size, and last the
per-user send rate, so that a refused request spends nothing. The row and its ``send_email``
job commit together; the worker side is imap2api.sending.outbox.

A reply to an email without ``to``/``cc``/``bcc`` goes to its sender; its subject defaults to
the original's with ``Re: `` once, and In-Reply-To/References come from the original, so the
sent copy joins its thread in the mirror. A forward's subject gets ``Fwd: `` once; the original
comes from the IMAP server (attached as message/rfc822, or inlined with its attachments).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import outbox as crud_outbox
from imap2api.crud.common import Page
from imap2api.db import session_scope
from imap2api.enums import SendStatus
from imap2api.errors import NotFound, Refused, ValidationFailed
from imap2api.mail.compose import (
    Address,
    Composed,
    ComposeError,
    Draft,
    Upload,
    compose,
    forward_subject,
    parse_address,
    reply_subject,
    reply_threading,
)
from imap2api.mail.references import parse_msg_ids
from imap2api.models import Email, ImapServer, OutboxMessage, utcnow
from imap2api.sending.limits import spend_send
from imap2api.services import content, jobs, mail, servers
from imap2api.services.paging import page_number, page_size
from imap2api.services.principal import Principal
from imap2api.validation import ADDRESS, CONTROL_CHARACTERS

MAX_ATTACHMENTS = 100
MAX_KEY_LENGTH = 255
NO_SMTP = "This IMAP server has no SMTP host: set its smtp_host (and the password) to send."


@dataclass(frozen=True)
class Attachment:
    """An attachment as a request gives it: the bytes decoded, or base64 text still to decode."""

    filename: str
    content_type: str = "application/octet-stream"
    data: bytes | None = None
    content_base64: str | None = None
    content_id: str = ""


@dataclass(frozen=True)
class Outgoing:
    """A message to send, as the API takes it (snake_case, REST's names)."""

    imap_server: Any
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str | None = None
    text: str = ""
    html: str = ""
    reply_to_email: Any = None
    forward_email: Any = None
    forward_inline: bool = False
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Submitted:
    """A queued message, and whether it was queued by an earlier request with the same key."""

    message: OutboxMessage
    replayed: bool = False


def submit(actor: Principal, outgoing: Outgoing, *, idempotency_key: str | None = None) -> Submitted:
    """Compose and queue a message of the principal's; see the module docstring for the order of checks."""
    assert actor.user_id is not None
    key = _key(idempotency_key)
    _check_bounds(outgoing)
    uploads = _uploads(outgoing.attachments)
    fingerprint = _fingerprint(outgoing, uploads)
    with session_scope() as session:
        if key is not None:
            earlier = _replay(session, actor.user_id, key, fingerprint)
            if earlier is not None:
                return Submitted(earlier, replayed=True)
        server = _server(session, actor, outgoing.imap_server)
        original = _original(session, actor, server, outgoing.reply_to_email, "reply_to_email")
        forwarded = _original(session, actor, server, outgoing.forward_email, "forward_email")
    raw_original = _fetch_original(actor, forwarded) if forwarded is not None else None
    draft = _draft(server, outgoing, uploads, original, forwarded, raw_original)
    composed = _compose(draft, server)
    if len(composed.raw) > settings.send_max_message_bytes:
        raise _too_large(len(composed.raw))
    wait = spend_send(actor.user_id)
    if wait is not None:
        raise Refused(
            f"Request was throttled. Expected available in {wait} seconds.",
            code="SEND_THROTTLED",
            status=429,
            retry_after=wait,
        )
    row = _row(actor.user_id, server, outgoing, draft, composed, key, fingerprint, original, forwarded)
    try:
        with session_scope() as session:
            session.add(row)
            session.flush()
            jobs.enqueue(session, jobs.send_job(row.id or 0))
    except IntegrityError:
        # The same key, queued by a request that ran at the same time: answer that one.
        assert key is not None
        with session_scope() as session:
            earlier = _replay(session, actor.user_id, key, fingerprint)
        if earlier is None:
            raise
        return Submitted(earlier, replayed=True)
    return Submitted(row)


def get(session: Session, actor: Principal, outbox_id: int) -> OutboxMessage:
    """A message of the principal's outbox."""
    return crud_outbox.get_message(session, owner_id=actor.owner_scope, outbox_id=outbox_id)


def page(
    session: Session,
    actor: Principal,
    *,
    number: int,
    size: int | None,
    last: bool = False,
    status: str | None = None,
    server_id: int | None = None,
) -> Page[OutboxMessage]:
    """One page of the user's outbox, newest first."""
    assert actor.user_id is not None
    if server_id is not None:
        servers.get(session, actor, server_id)
    return crud_outbox.list_messages(
        session,
        owner_id=actor.user_id,
        page=page_number(number, last=last),
        page_size=page_size(size),
        status=status,
        server_id=server_id,
    )


def cancel(session: Session, actor: Principal, outbox_id: int) -> OutboxMessage:
    """Cancel a queued message; one being sent, or finished, cannot be (409 NOT_CANCELLABLE)."""
    row = get(session, actor, outbox_id)
    if not crud_outbox.cancel(session, outbox_id=outbox_id):
        raise Refused(
            f"This message is {row.status}: only a queued message can be cancelled.",
            code="NOT_CANCELLABLE",
            status=409,
        )
    session.refresh(row)
    return row


def _key(value: str | None) -> str | None:
    """The Idempotency-Key, checked: printable ASCII, at most 255 characters (None: none given)."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or CONTROL_CHARACTERS.search(value):
        raise ValidationFailed(
            {"idempotency_key": [f"Enter 1 to {MAX_KEY_LENGTH} printable ASCII characters."]}
        )
    return value


def _check_bounds(outgoing: Outgoing) -> None:
    """Refuse what is past the bounds before any work on it: parsing the addresses, the html → text
    conversion and composition all cost time in the size of what a caller sends."""
    given = len(outgoing.to) + len(outgoing.cc) + len(outgoing.bcc)
    if given > settings.send_max_recipients:
        raise ValidationFailed(
            {"to": [f"At most {settings.send_max_recipients} recipients per message (to, cc and bcc)."]}
        )
    body = len(outgoing.text.encode("utf-8", "surrogatepass")) + len(
        outgoing.html.encode("utf-8", "surrogatepass")
    )
    if body > settings.send_max_message_bytes:
        raise _too_large(body)


def _uploads(attachments: tuple[Attachment, ...]) -> tuple[Upload, ...]:
    """The attachments with their bytes, base64 decoded; field errors name the attachment."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationFailed({"attachments": [f"Ensure this list has at most {MAX_ATTACHMENTS} elements."]})
    uploads = []
    total = 0
    for index, item in enumerate(attachments):
        data = item.data
        if data is None:
            encoded = item.content_base64 or ""
            total += len(encoded) * 3 // 4
            if total > settings.send_max_message_bytes:
                raise _too_large(total)
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed(
                    {"attachments": [f"Attachment {index + 1}: content_base64 is not valid base64."]}
                ) from None
        else:
            total += len(data)
            if total > settings.send_max_message_bytes:
                raise _too_large(total)
        if not item.filename.strip():
            raise ValidationFailed({"attachments": [f"Attachment {index + 1}: filename may not be blank."]})
        uploads.append(
            Upload(item.filename, item.content_type or "application/octet-stream", data, item.content_id)
        )
    return tuple(uploads)


def _too_large(size: int) -> Refused:
    """The 413 of a message past SEND_MAX_MESSAGE_BYTES."""
    return Refused(
        f"The message would be {size} bytes or more; at most {settings.send_max_message_bytes} may be sent.",
        code="MESSAGE_TOO_LARGE",
        status=413,
    )


def _fingerprint(outgoing: Outgoing, uploads: tuple[Upload, ...]) -> str:
    """A digest of the request, to tell a retried request from another one under the same key."""
    described = {name: value for name, value in outgoing.__dict__.items() if name != "attachments"} | {
        "attachments": [
            (u.filename, u.content_type, u.content_id, hashlib.sha256(u.data).hexdigest()) for u in uploads
        ]
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _replay(session: Session, owner_id: int, key: str, fingerprint: str) -> OutboxMessage | None:
    """The message an earlier request with this key queued; refused when this request differs."""
    earlier = crud_outbox.by_idempotency_key(session, owner_id=owner_id, key=key)
    if earlier is not None and earlier.request_hash != fingerprint:
        raise Refused(
            "This Idempotency-Key was used for another request; use a new key for a new message.",
            code="IDEMPOTENCY_KEY_REUSED",
            status=422,
        )
    return earlier


def _server(session: Session, actor: Principal, value: Any) -> ImapServer:
    """The server named, the principal's and able to send."""
    if value is None or value == "":
        raise ValidationFailed({"imap_server": ["This field is required."]})
    server_id = servers.referenced(session, actor, value)
    assert server_id is not None
    server = servers.get(session, actor, server_id)
    if not server.smtp_host:
        raise ValidationFailed({"imap_server": [NO_SMTP]})
    return server


def _original(session: Session, actor: Principal, server: ImapServer, value: Any, name: str) -> Email | None:
    """The email a reply or forward names: the principal's, on the same server."""
    if value is None or value == "":
        return None
    try:
        email = mail.get(session, actor, int(value))
    except (NotFound, TypeError, ValueError):
        raise ValidationFailed({name: [f'Invalid pk "{value}" - object does not exist.']}) from None
    if email.imap_server_id != server.id:
        raise ValidationFailed({name: ["This email is not of the IMAP server the message is sent from."]})
    return email


def _fetch_original(actor: Principal, email: Email) -> bytes:
    """The raw original of a forward, from its IMAP server, bounded by the message size limit."""
    download = content.raw_message(actor, email.id or 0)
    chunks, size = [], 0
    try:
        for chunk in download.chunks:
            size += len(chunk)
            if size > settings.send_max_message_bytes:
                raise _too_large(size)
            chunks.append(chunk)
    finally:
        download.close()
    return b"".join(chunks)


def _addresses(values: tuple[str, ...], name: str) -> tuple[Address, ...]:
    """Parsed addresses of one field; a bad one is a field error."""
    try:
        return tuple(parse_address(value, field=name) for value in values)
    except ComposeError as exc:
        raise ValidationFailed({exc.field or name: [str(exc)]}) from None


def _sender(server: ImapServer) -> Address:
    """The From address: the server's email_address, else its IMAP username when that is an address."""
    address = server.email_address or (server.username if ADDRESS.match(server.username) else "")
    if not address:
        raise ValidationFailed(
            {
                "imap_server": [
                    "The IMAP username is no email address: set the server's email_address to send."
                ]
            }
        )
    return Address(name=server.display_name, email=address)


def _draft(
    server: ImapServer,
    outgoing: Outgoing,
    uploads: tuple[Upload, ...],
    original: Email | None,
    forwarded: Email | None,
    raw_original: bytes | None,
) -> Draft:
    """The draft to compose, with a reply's defaults and threading."""
    to, cc, bcc = (_addresses(getattr(outgoing, name), name) for name in ("to", "cc", "bcc"))
    count = len({address.email.lower() for address in (*to, *cc, *bcc)})
    if count > settings.send_max_recipients:
        raise ValidationFailed(
            {
                "to": [
                    f"At most {settings.send_max_recipients} recipients per message (to, cc and bcc "
                    f"together); {count} given."
                ]
            }
        )
    subject = outgoing.subject
    in_reply_to = ""
    references: tuple[str, ...] = ()
    if original is not None:
        if not (to or cc or bcc) and original.sender:
            to = (Address(name=original.sender_name, email=original.sender),)
        subject = reply_subject(original.subject if subject is None else subject)
        in_reply_to, references = reply_threading(
            original.message_id,
            " ".join(parse_msg_ids(original.references)),
            in_reply_to=original.in_reply_to,
        )
    elif forwarded is not None:
        subject = forward_subject(forwarded.subject if subject is None else subject)
    if not (to or cc or bcc):
        raise ValidationFailed({"to": ["Give at least one recipient (to, cc or bcc)."]})
    return Draft(
        sender=_sender(server),
        to=to,
        cc=cc,
        bcc=bcc,
        subject=subject or "",
        text=outgoing.text,
        html=outgoing.html,
        attachments=uploads,
        in_reply_to=in_reply_to,
        references=references,
        forward=raw_original,
        forward_inline=outgoing.forward_inline,
    )


def _compose(draft: Draft, server: ImapServer) -> Composed:
    """The message's bytes; a composition error is a field error."""
    domain = settings.message_id_domain or draft.sender.email.rsplit("@", 1)[-1]
    try:
        return compose(draft, message_id_domain=domain, now=utcnow())
    except ComposeError as exc:
        raise ValidationFailed({exc.field or "non_field_errors": [str(exc)]}) from None


def _row(
    owner_id: int,
    server: ImapServer,
    outgoing: Outgoing,
    draft: Draft,
    composed: Composed,
    key: str | None,
    fingerprint: str,
    original: Email | None,
    forwarded: Email | None,
) -> OutboxMessage:
    """The outbox row of a composed message, queued now."""
    now = utcnow()

    def listed(addresses: tuple[Address, ...]) -> str:
        return json.dumps([_shown(address) for address in addresses], ensure_ascii=False)

    return OutboxMessage(
        owner_id=owner_id,
        imap_server_id=server.id or 0,
        status=SendStatus.QUEUED.value,
        message_id=composed.message_id,
        subject=draft.subject,
        to=listed(draft.to),
        cc=listed(draft.cc),
        bcc=listed(draft.bcc),
        size=len(composed.raw),
        reply_to_email_id=original.id if original is not None else None,
        forward_email_id=forwarded.id if forwarded is not None else None,
        envelope_from=composed.envelope_from,
        envelope_to=json.dumps(list(composed.recipients), ensure_ascii=False),
        smtputf8=composed.smtputf8,
        raw=composed.raw,
        idempotency_key=key,
        request_hash=fingerprint,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
    )


def _shown(address: Address) -> str:
    """An address as the outbox lists it: ``Name <email>`` or the bare address."""
    return f"{address.name} <{address.email}>" if address.name else address.email
