"""Pydantic models that describe the REST bodies in /openapi.json (the routes build plain dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ValidationErrorBody(BaseModel):
    """``{"field": ["message", ...]}``."""

    model_config = {"extra": "allow", "json_schema_extra": {"example": {"port": ["A valid integer is required."]}}}


class DetailBody(BaseModel):
    """``{"detail": "message"}``."""

    detail: str


class ImapServerIn(BaseModel):
    """An IMAP account to create or change (on update every field is optional)."""

    name: str = Field(max_length=255)
    host: str = Field(max_length=255)
    port: int = Field(993, ge=1, le=65535)
    username: str = Field(max_length=255)
    password: str = Field(json_schema_extra={"writeOnly": True})
    use_ssl: bool = True
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


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorBody},
    401: {"model": DetailBody},
    404: {"model": DetailBody},
}


def documented(model: type, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: ``model`` on success plus the error bodies (no response filtering)."""
    return {status: {"model": model}, **ERRORS}
