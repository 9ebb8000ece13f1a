"""The mirrored mail, read-only: the IMAP server is the source of truth.

An email's page lists its attachments with download links (streamed from IMAP, served sandboxed
as the REST downloads are) and shows the HTML body rendered in a sandboxed frame: no script runs,
and the admin pages' policy (images from this site or data: only) keeps remote content out.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from sqladmin import expose
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from imap2api.admin.common import AdminView, FolderFilter, IdFilter, acting, excerpt, link_to, preformatted
from imap2api.crud import emails as crud_emails
from imap2api.db import session_scope
from imap2api.errors import NotFound, SyncFailed
from imap2api.models import Email, ImapServer, User
from imap2api.rest.content import DownloadResponse
from imap2api.services import content


def sandboxed_html(model: Any, attribute: str) -> Markup:
    """The HTML body rendered in a frame with no scripts, forms or origin of this site (escaped, srcdoc),
    and its source, escaped, folded under it."""
    value = getattr(model, attribute) or ""
    if not value:
        return Markup("")
    # sandbox="" (no allow-*): the frame is a unique origin, runs no script and submits no form; a
    # srcdoc frame inherits the admin's policy, so no remote image or style loads either. No inline
    # style: the look is in static/admin.css.
    return Markup(
        '<iframe sandbox="" class="mail-html" referrerpolicy="no-referrer" title="HTML body" srcdoc="{}">'
        "</iframe>"
        '<details class="mail-html-source"><summary>HTML source</summary><pre>{}</pre></details>'
    ).format(escape(value), escape(value))


def attachment_links(model: Any, _attribute: str, request: Request) -> Markup:
    """The email's attachments, each a download link (name, type, size)."""
    with session_scope() as session:
        rows = crud_emails.attachments_of(session, email_ids=[model.id])[model.id]
    if not rows:
        return Markup("none")
    items = Markup("").join(
        Markup('<li><a href="{}">{}</a> <small>{} · {} bytes{}</small></li>').format(
            request.url_for("admin:view-email-download_attachment", pk=model.id, attachment_id=row.id),
            row.filename or f"attachment {row.id}",
            row.content_type,
            row.size,
            " · inline" if row.inline else "",
        )
        for row in rows
    )
    return Markup("<ul>{}</ul>").format(items)


class EmailAdmin(AdminView, model=Email):
    """Mirrored messages of every user (search by subject, sender or Message-ID)."""

    icon = "fa-solid fa-envelope"
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ["id", "owner_id", "imap_server_id", "folder", "subject", "sender", "date", "seen"]
    column_labels = {"owner_id": "Owner", "imap_server_id": "Server", "has_attachments": "Attachments"}
    column_formatters = {
        "owner_id": link_to("user", "owner_id"),
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "subject": excerpt(80),
    }
    column_formatters_detail = {
        "owner_id": link_to("user", "owner_id"),
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "body_text": preformatted,
        "body_html": sandboxed_html,
        "references": preformatted,
        "has_attachments": attachment_links,
    }
    column_searchable_list = ["subject", "sender", "message_id"]
    column_sortable_list = ["id", "date", "folder", "sender"]
    column_filters = [
        IdFilter(Email.owner_id, User.username, title="Owner"),
        IdFilter(Email.imap_server_id, ImapServer.name, title="Server"),
        FolderFilter(Email.folder),
    ]

    @expose("/{pk:int}/attachments/{attachment_id:int}", methods=["GET"])
    async def download_attachment(self, request: Request) -> Response:
        """One attachment, streamed from the IMAP server."""
        email_id, attachment_id = request.path_params["pk"], request.path_params["attachment_id"]
        try:
            _, download = await run_in_threadpool(
                content.attachment, acting(request), email_id, attachment_id
            )
        except NotFound:
            return PlainTextResponse("Not found.", status_code=404)
        except SyncFailed as exc:
            return PlainTextResponse(exc.message, status_code=502)
        return DownloadResponse(download, inline=False)
