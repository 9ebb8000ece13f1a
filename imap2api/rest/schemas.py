"""Pydantic models that describe the REST bodies in /openapi.json (the routes build plain dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from imap2api.models import (
    ImapServerCreate,
    ImapServerPublic,
    OutboxMessagePublic,
    SyncRunPublic,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookSettings,
)
from imap2api.rest.shapes import openapi_model


class ValidationErrorBody(BaseModel):
    """``{"field": ["message", ...]}``."""

    model_config = {
        "extra": "allow",
        "json_schema_extra": {"example": {"port": ["A valid integer is required."]}},
    }


class DetailBody(BaseModel):
    """``{"detail": "message"}``."""

    detail: str


# The resources' bodies are derived from the models (the one declaration of each field, with its
# description and bounds): a field added there appears here.
@openapi_model(ImapServerCreate, first=("name", "host", "port", "username", "password"))
class ImapServerIn(BaseModel):
    """An IMAP account to create or change (on update every field is optional)."""


@openapi_model(ImapServerPublic, output=True)
class ImapServerOut(BaseModel):
    """An IMAP account as the API shows it (never with its password)."""


class EmailListItem(BaseModel):
    """An email in a list."""

    id: int
    message_id: str
    subject: str
    sender: str
    recipient: str
    date: datetime
    folder: str
    thread_id: str
    thread_count: int
    imap_server: int
    sender_name: str
    cc: str
    seen: bool
    flagged: bool
    has_attachments: bool


class EmailList(BaseModel):
    """A page of emails (or of threads)."""

    count: int
    next: str | None
    previous: str | None
    results: list[EmailListItem]


class ThreadEmail(BaseModel):
    """A member of a thread."""

    id: int
    subject: str
    sender: str
    recipient: str
    date: datetime
    body_text: str
    body_html: str
    folder: str


class AttachmentOut(BaseModel):
    """Attachment metadata, and where its bytes download."""

    id: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    download_url: str


class EmailDetail(EmailListItem):
    """One email with every stored field."""

    body_text: str
    body_html: str
    created_at: datetime
    updated_at: datetime
    in_reply_to: str
    references: list[str]
    flags: list[str]
    size: int
    attachments: list[AttachmentOut]
    thread_emails: list[ThreadEmail]


class Statistics(BaseModel):
    """Totals over the mirror."""

    total_emails: int
    total_threads: int
    folders: dict[str, int]


class SyncResult(BaseModel):
    """The outcome of ``POST /imap-servers/{id}/sync/``."""

    status: str = Field(description="success, queued, running or error")
    message: str
    sync_run: int | None = None
    code: str | None = Field(None, description="on error: IMAP_AUTH_FAILED, IMAP_CONNECTION_FAILED...")
    messages_new: int | None = None
    messages_updated: int | None = None
    messages_deleted: int | None = None


class ImapServerList(BaseModel):
    """A page of IMAP accounts."""

    count: int
    next: str | None
    previous: str | None
    results: list[ImapServerOut]


@openapi_model(WebhookSettings, ids=("imap_server",))
class WebhookIn(BaseModel):
    """A webhook to create or change (on update every field is optional)."""


@openapi_model(WebhookPublic, ids=("imap_server",), output=True)
class WebhookOut(BaseModel):
    """A webhook as the API shows it (never with its secret, except right after creation/rotation)."""


class WebhookCreated(WebhookOut):
    """A webhook with its signing secret, shown only in this answer."""

    secret: str = Field(description="whsec_ + base64 key for Standard Webhooks signatures")


class WebhookList(BaseModel):
    """A page of webhooks."""

    count: int
    next: str | None
    previous: str | None
    results: list[WebhookOut]


@openapi_model(WebhookDeliveryPublic, exclude=("webhook",), output=True)
class WebhookDeliveryOut(BaseModel):
    """One attempt to deliver one event to one webhook."""


class WebhookDeliveryList(BaseModel):
    """A page of delivery attempts, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[WebhookDeliveryOut]


OUTBOX_IDS = ("imap_server", "reply_to_email", "forward_email", "email")


@openapi_model(OutboxMessagePublic, first=("id", "imap_server"), ids=OUTBOX_IDS, output=True)
class OutboxMessageOut(BaseModel):
    """A message of the outbox (never with its bytes)."""


class OutboxMessageList(BaseModel):
    """A page of the outbox, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[OutboxMessageOut]


SYNC_RUN_IDS = ("imap_server",)


@openapi_model(SyncRunPublic, first=("id", "imap_server"), ids=SYNC_RUN_IDS, output=True)
class SyncRunOut(BaseModel):
    """One sync of one server: status, progress, counts, and the named folders the server lacks."""


class SyncRunList(BaseModel):
    """A page of a server's sync runs, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[SyncRunOut]


class AttachmentIn(BaseModel):
    """A file to attach, its bytes in base64."""

    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str
    content_id: str = Field(
        default="", description="Set: an inline image the html shows as cid:<content_id>."
    )


class SendEmailIn(BaseModel):
    """A message to send (JSON; or multipart/form-data, files under ``attachments`` and ``inline``)."""

    imap_server: int
    to: list[str] = Field(default=[], description='"ann@example.com" or "Ann Example <ann@example.com>".')
    cc: list[str] = []
    bcc: list[str] = []
    subject: str | None = Field(
        default=None, description="Default on a reply or forward: Re:/Fwd: + the original's."
    )
    text: str = ""
    html: str = ""
    reply_to_email: int | None = None
    forward_email: int | None = None
    forward_inline: bool = False
    attachments: list[AttachmentIn] = []


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorBody},
    401: {"model": DetailBody},
    404: {"model": DetailBody},
}


class CodedErrorBody(BaseModel):
    """An error with a stable code: the IMAP server down or refusing (502), unable to do it safely or
    read-only (409), busy with a sync (503)."""

    detail: str
    code: str


# What a write to mail may answer beside the common errors.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": CodedErrorBody},
    502: {"model": CodedErrorBody},
    503: {"model": CodedErrorBody},
}


# What sending may answer beside the common errors.
SEND_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": CodedErrorBody},
    422: {"model": CodedErrorBody},
    429: {"model": CodedErrorBody},
}


def documented(model: type, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: ``model`` on success plus the error bodies (no response filtering)."""
    return {status: {"model": model}, **ERRORS}
