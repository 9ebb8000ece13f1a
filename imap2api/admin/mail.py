"""The mirrored mail, read-only: the IMAP server is the source of truth."""

from __future__ import annotations

from imap2api.admin.common import AdminView, IdFilter, excerpt, link_to, preformatted
from imap2api.models import Email, ImapServer, User


class EmailAdmin(AdminView, model=Email):
    """Mirrored messages of every user (search by subject, sender or Message-ID)."""

    icon = "fa-solid fa-envelope"
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ["id", "owner_id", "imap_server_id", "folder", "subject", "sender", "date", "seen"]
    column_labels = {"owner_id": "Owner", "imap_server_id": "Server"}
    column_formatters = {
        "owner_id": link_to("user", "owner_id"),
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "subject": excerpt(80),
    }
    column_formatters_detail = {
        "owner_id": link_to("user", "owner_id"),
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "body_text": preformatted,
        "body_html": preformatted,
        "references": preformatted,
    }
    column_searchable_list = ["subject", "sender", "message_id"]
    column_sortable_list = ["id", "date", "folder", "sender"]
    column_filters = [
        IdFilter(Email.owner_id, User.username, title="Owner"),
        IdFilter(Email.imap_server_id, ImapServer.name, title="Server"),
    ]
