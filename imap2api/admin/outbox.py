"""The admin view of the outbox: every outgoing message, its attempts and answers; cancel queued ones."""

from __future__ import annotations

from sqladmin import action
from starlette.requests import Request
from starlette.responses import Response

from imap2api.admin.common import (
    REFRESH_SECONDS,
    AdminView,
    IdFilter,
    act_on_selected,
    excerpt,
    link_to,
    preformatted,
)
from imap2api.models import ImapServer, OutboxMessage
from imap2api.services import sending


class OutboxAdmin(AdminView, model=OutboxMessage):
    """Messages sent through the servers' SMTP servers: status, attempts, answers (read-only)."""

    icon = "fa-solid fa-paper-plane"
    name = "Outgoing message"
    name_plural = "Outbox"
    refresh_seconds = REFRESH_SECONDS
    can_create = False
    can_edit = False
    can_delete = False
    column_list = [
        "id",
        "imap_server_id",
        "status",
        "subject",
        "to",
        "attempts",
        "error_code",
        "sent_copy",
        "created_at",
        "sent_at",
    ]
    # The bytes are the sender's mail, and the key and hash are of no use to read.
    column_details_exclude_list = ["raw", "request_hash", "idempotency_key", "envelope_to"]
    column_labels = {"imap_server_id": "Server", "sent_copy": "Copy in Sent"}
    column_formatters = {
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "subject": excerpt(60),
        "to": excerpt(60),
    }
    column_formatters_detail = {
        **column_formatters,
        "error": preformatted,
        "smtp_response": preformatted,
    }
    column_searchable_list = ["subject", "message_id"]
    column_filters = [IdFilter(OutboxMessage.imap_server_id, ImapServer.name, title="Server")]

    @action(
        name="cancel",
        label="Cancel",
        confirmation_message="Queued messages are not sent; one being sent or finished cannot be cancelled.",
    )
    async def cancel(self, request: Request) -> Response:
        """Cancel the selected queued messages."""
        return await act_on_selected(
            request, sending.cancel, identity=self.identity, done="Cancelled: message"
        )
