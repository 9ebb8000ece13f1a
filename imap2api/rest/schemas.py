"""Pydantic models that describe the REST bodies in /openapi.json (the routes build plain dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ValidationErrorBody(BaseModel):
    """``{"field": ["message", ...]}``."""

    model_config = {
        "extra": "allow",
        "json_schema_extra": {"example": {"port": ["A valid integer is required."]}},
    }


class DetailBody(BaseModel):
    """``{"detail": "message"}``."""

    detail: str


class ImapServerIn(BaseModel):
    """An IMAP account to create or change (on update every field is optional)."""

    name: str = Field(max_length=255)
    host: str = Field(max_length=255)
    port: int = Field(993, ge=1, le=65535)
    username: str = Field(max_length=255)
    password: str = Field(
        json_schema_extra={"writeOnly": True},
        description="required again on an update that changes host, port, use_ssl or tls_mode",
    )
    use_ssl: bool = Field(True, description="true: implicit TLS (tls_mode ssl); false: tls_mode starttls")
    tls_mode: Literal["ssl", "starttls", "none"] = Field(
        "ssl",
        description="ssl (implicit TLS), starttls (required) or none (clear text); wins over use_ssl, "
        "which decides when it is left out",
    )
    sync_limit_type: str = Field("all", pattern="^(all|last_n|days|weeks|months)$")
    sync_limit_value: int | None = Field(None, ge=1)
    folders_to_sync: str = ""
    exclude_trash: bool = True


class ImapServerOut(BaseModel):
    """An IMAP account as the API shows it (never with its password)."""

    id: int
    name: str
    host: str
    port: int
    username: str
    use_ssl: bool
    tls_mode: Literal["ssl", "starttls", "none"]
    sync_limit_type: str
    sync_limit_value: int | None
    folders_to_sync: str
    exclude_trash: bool
    last_sync: datetime | None
    last_sync_status: str
    last_error: str
    created_at: datetime
    updated_at: datetime


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
    """Attachment metadata."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool


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


WEBHOOK_EVENTS = ("email.received", "thread.updated", "sync.completed")


class WebhookIn(BaseModel):
    """A webhook to create or change (on update every field is optional)."""

    url: str = Field(max_length=2000, description="http(s) URL the events are POSTed to")
    events: list[str] = Field(
        default=list(WEBHOOK_EVENTS),
        description="subset of email.received, thread.updated, sync.completed (default: all)",
        json_schema_extra={"items": {"type": "string", "enum": list(WEBHOOK_EVENTS)}},
    )
    imap_server: int | None = Field(None, description="only events of this server (null: every server)")
    is_active: bool = True


class WebhookOut(BaseModel):
    """A webhook as the API shows it (never with its secret, except right after creation/rotation)."""

    id: int
    url: str
    events: list[str]
    imap_server: int | None
    is_active: bool
    disabled_reason: str = Field(description="why the endpoint was disabled automatically, if it was")
    failing_since: datetime | None = Field(description="since when every delivery has failed")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """A webhook with its signing secret, shown only in this answer."""

    secret: str = Field(description="whsec_ + base64 key for Standard Webhooks signatures")


class WebhookList(BaseModel):
    """A page of webhooks."""

    count: int
    next: str | None
    previous: str | None
    results: list[WebhookOut]


class WebhookDeliveryOut(BaseModel):
    """One attempt to deliver one event to one webhook."""

    id: int
    event_id: str
    event_type: str
    attempt: int
    status: str = Field(description="pending, sending, success, retrying or failed")
    response_status: int | None
    response_body: str = Field(description="the first 2 KB of the response")
    error: str
    duration_ms: int | None
    created_at: datetime
    next_attempt_at: datetime | None


class WebhookDeliveryList(BaseModel):
    """A page of delivery attempts, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[WebhookDeliveryOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorBody},
    401: {"model": DetailBody},
    404: {"model": DetailBody},
}


def documented(model: type, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: ``model`` on success plus the error bodies (no response filtering)."""
    return {status: {"model": model}, **ERRORS}
