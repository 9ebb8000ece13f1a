"""Admin views of IMAP servers (the password is write-only, the login testable) and their sync runs."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from sqladmin import action, expose
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from wtforms import (
    BooleanField,
    Form,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
    validators,
)
from wtforms.fields.core import UnboundField

from imap2api.admin.common import (
    REFRESH_SECONDS,
    AdminView,
    IdFilter,
    acting,
    admin_message,
    back,
    each_selected,
    excerpt,
    expected,
    link_to,
    list_url,
    preformatted,
    selected_ids,
    spend_api_budget,
    user_choices,
)
from imap2api.admin.server_warnings import MissingFolders, last_missing_folders
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud.servers import WRITABLE
from imap2api.db import run_db
from imap2api.errors import Imap2ApiError, ValidationFailed
from imap2api.models import ImapServer, SyncRun, User
from imap2api.services import connection_check, servers, sync
from imap2api.services.principal import Principal
from imap2api.validation import SYNC_LIMIT_TYPES

TLS_CHOICES = [
    ("ssl", "Implicit TLS (port 993)"),
    ("starttls", "STARTTLS, required (port 143)"),
    ("none", "None: password and mail in clear text"),
]
SMTP_SECURITY_CHOICES = [
    ("starttls", "STARTTLS, required (port 587)"),
    ("ssl", "Implicit TLS (port 465)"),
    ("none", "None: password and mail in clear text"),
]
AUTH_CHOICES = [("password", "Password"), ("oauth2", "OAuth2 (XOAUTH2 / OAUTHBEARER)")]
PROVIDER_CHOICES = [("", "None"), ("google", "Google"), ("microsoft", "Microsoft"), ("custom", "Custom")]
# Left to their defaults, or the IMAP host's preset (imap2api.sending.presets), when the SMTP host is
# blank: an unticked box is absent from a form post, and would read as false.
SMTP_DEFAULTED_FIELDS = ("smtp_port", "smtp_security", "smtp_auth", "save_sent")
INVALID = ValidationFailed.code  # a connection test refused before it connects: the settings are invalid


class ServerForm(Form):
    """An IMAP account; validated by the same rules as the API."""

    owner_id = SelectField("Owner", coerce=int, validate_choice=False)
    name = StringField("Name", [validators.InputRequired()])
    host = StringField("Host", [validators.InputRequired()])
    port = IntegerField("Port", default=993)
    username = StringField("IMAP username", [validators.InputRequired()])
    password = PasswordField(
        "IMAP password",
        description="Stored encrypted. When editing, leave blank to keep it "
        "(a new host, port or TLS mode needs it again).",
    )
    tls_mode = SelectField("TLS", choices=TLS_CHOICES, default="ssl")
    auth_type = SelectField(
        "Log in with",
        choices=AUTH_CHOICES,
        default="password",
        description="OAuth2: connect the account through the API's hosted flow (docs/oauth2.md).",
    )
    oauth2_provider = SelectField("OAuth2 provider", choices=PROVIDER_CHOICES, default="")
    sync_limit_type = SelectField("Sync limit", choices=[(value, value) for value in SYNC_LIMIT_TYPES])
    sync_limit_value = IntegerField("Limit value", [validators.Optional()])
    folders_to_sync = StringField(
        "Folders to sync", description="Comma-separated exact names; blank for all."
    )
    tls_verify = BooleanField(
        "Verify the TLS certificate", default=True, description="Untick only for a self-signed server."
    )
    tls_ca_cert = TextAreaField(
        "Trusted certificates (PEM)",
        description="A self-signed server's certificate or a private CA, besides the system's: "
        "verified, unlike unticking the box above. Blank: the system's only.",
        render_kw={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----"},
    )
    exclude_trash = BooleanField("Skip Trash and Junk", default=True)
    sync_interval_seconds = IntegerField(
        "Sync interval (seconds)",
        [validators.Optional(), validators.NumberRange(min=60)],
        description="Blank for the service default.",
    )
    is_active = BooleanField("Active (synced on schedule)", default=True)
    email_address = StringField("Send as", description="Blank: the IMAP username, when it is an address.")
    display_name = StringField("Sender name")
    smtp_host = StringField(
        "SMTP host", description="Blank: sending off, or filled for a well-known IMAP host (Gmail...)."
    )
    smtp_port = IntegerField("SMTP port", default=587)
    smtp_security = SelectField("SMTP TLS", choices=SMTP_SECURITY_CHOICES, default="starttls")
    smtp_username = StringField("SMTP username", description="Blank: the IMAP username.")
    smtp_password = PasswordField(
        "SMTP password",
        description="Stored encrypted. Blank: keep it (or use the IMAP password, when none is stored).",
    )
    smtp_auth = BooleanField("Log in to SMTP", default=True)
    save_sent = BooleanField(
        "File sent mail in Sent", default=True, description="Untick where the provider does (Gmail)."
    )


class EditForm(ServerForm):
    """The form of a stored server: its owner does not change, so it has no owner field."""

    owner_id = None  # WTForms: None removes an inherited field


# The API's writable fields this form edits (a field added to the model shows here once the form has it).
SERVER_FIELDS = tuple(name for name in WRITABLE if isinstance(getattr(ServerForm, name, None), UnboundField))


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    """The form's values as service changes: a blank password keeps the stored one."""
    changes = {name: data.get(name) for name in SERVER_FIELDS}
    if changes["folders_to_sync"] is None:
        changes["folders_to_sync"] = ""
    for name in ("email_address", "display_name", "smtp_host", "smtp_username"):
        changes[name] = changes[name] or ""
    # Browsers send a textarea's lines ended by CRLF: unchanged PEM must compare equal to the stored one.
    changes["tls_ca_cert"] = (changes["tls_ca_cert"] or "").replace("\r\n", "\n")
    changes["oauth2_provider"] = changes["oauth2_provider"] or None
    if not changes["smtp_host"]:
        for name in SMTP_DEFAULTED_FIELDS:
            del changes[name]
    for name in ("password", "smtp_password"):
        if data.get(name):
            changes[name] = data[name]
    return changes


def _as_saved(session: Session, actor: Principal, server_id: int, changes: dict[str, Any]) -> ImapServer:
    """The server as saving ``changes`` would leave it (the update's own rules and secrets), detached;
    the update itself is rolled back: a test stores nothing."""
    server = servers.update(session, actor, server_id, changes)
    session.expunge(server)
    session.rollback()
    return server


class ImapServerAdmin(AdminView, model=ImapServer):
    """IMAP servers of every user: settings, last result, "sync now"."""

    icon = "fa-solid fa-server"
    name = "IMAP server"
    refresh_seconds = REFRESH_SECONDS  # the last result and watch status change on their own
    form = ServerForm
    # The forms, with a "Test connection" button (static/server-test.js) under them.
    create_template = "imap2api/server_create.html"
    edit_template = "imap2api/server_edit.html"
    form_columns = list(SERVER_FIELDS)
    form_create_rules = ["owner_id", *form_columns]  # type: ignore[list-item]
    form_edit_rules = list(form_columns)  # type: ignore[arg-type]
    column_list = [
        "id",
        "name",
        "owner_id",
        "host",
        "username",
        "auth_type",
        "needs_reauth",
        "is_active",
        "last_sync",
        "last_sync_status",
        "last_error",
    ]
    # Secrets, even encrypted, are no business of a page.
    column_details_exclude_list = [
        "password_encrypted",
        "smtp_password_encrypted",
        "oauth2_refresh_token_encrypted",
        "oauth2_access_token_encrypted",
        "oauth2_client_secret_encrypted",
    ]
    column_labels = {"owner_id": "Owner", "last_sync_status": "Last result"}
    column_formatters = {
        "owner_id": link_to("user", "owner_id"),
        "last_error": excerpt(80),
        "last_sync_status": MissingFolders(brief=True),
    }
    column_formatters_detail = {
        "owner_id": link_to("user", "owner_id"),
        "last_error": preformatted,
        "last_sync_status": MissingFolders(brief=False),
        "id": lambda model, _attribute, request: Markup('{} · <a href="{}">sync runs</a>').format(
            model.id, list_url(request, "sync-run", imap_server_id=model.id)
        ),
    }
    column_searchable_list = ["name", "host", "username"]
    column_filters = [IdFilter(ImapServer.owner_id, User.username, title="Owner")]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        """The form, with the current users as owner choices; no owner field on edit (it is fixed)."""
        if rules is not None and "owner_id" not in rules:
            # sqladmin drops fields missing from the rules only on its own forms: shown, an owner
            # select with nothing selected would read as the first user.
            return EditForm
        choices = await user_choices()

        class Bound(ServerForm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.owner_id.choices = choices

        return Bound

    async def list(self, request: Request) -> Any:
        """A page of servers, with the folders their last finished runs found missing."""
        page = await super().list(request)
        await last_missing_folders(request, page.rows)
        return page

    async def get_object_for_details(self, request: Request) -> Any:
        """The server, with the folders its last finished run found missing."""
        found = await super().get_object_for_details(request)
        if found is not None:
            await last_missing_folders(request, [found])
        return found

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        """Create through the API's validation; the password is encrypted."""
        return await expected(
            run_db(servers.create, acting(request), _changes(data), owner_id=data.get("owner_id") or None)
        )

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Update through the API's validation (the owner does not change)."""
        return await expected(run_db(servers.update, acting(request), int(pk), _changes(data)))

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete the server with its folders, mail and runs."""
        await expected(run_db(servers.delete, acting(request), int(pk)))

    @action(name="sync-now", label="Sync now")
    async def sync_now(self, request: Request) -> Response:
        """Queue a sync of the selected servers and show their runs."""
        ids = selected_ids(request)
        runs = await each_selected(request, sync.request, ids)
        Flash.success(request, f"Sync queued: run {', '.join(f'#{run}' for run in runs)}.")
        target = (
            list_url(request, "sync-run", imap_server_id=ids[0])
            if len(ids) == 1
            else list_url(request, "sync-run")
        )
        return RedirectResponse(target, status_code=302)

    @action(name="test-connection", label="Test connection", add_in_list=False)
    async def test_connection(self, request: Request) -> Response:
        """Log in to the server with its stored credentials and list its folders; flash the outcome."""
        ids = selected_ids(request)
        if len(ids) != 1:
            Flash.error(request, "Test one server at a time.")
            return back(request, self.identity)
        try:
            server = await run_db(servers.get, acting(request), ids[0])
        except Imap2ApiError as exc:
            Flash.error(request, exc.message)
            return back(request, self.identity)
        check = await connection_check.check_server(server)
        (Flash.success if check.ok else Flash.error)(request, check_message(check))
        return RedirectResponse(request.url_for("admin:details", identity=self.identity, pk=ids[0]), 302)

    @expose("/test-settings", methods=["POST"])
    async def test_settings(self, request: Request) -> Response:
        """The form's "Test connection" (static/server-test.js): log in with the values in the form, not
        saved, and answer JSON with the outcome. ``?pk=``: an edit form, tested as saving it would leave
        the server (a blank password keeps the stored one, unless the destination changed). Each test
        spends one request of the admin's API budget, as ``POST /api/imap-servers/test/`` does."""
        refused = await spend_api_budget(request)
        if refused is not None:
            throttled = connection_check.ConnectionCheck(ok=False, error=refused.detail, code="THROTTLED")
            return _answer(throttled, 429, headers={**refused.headers, "Retry-After": str(refused.wait)})
        pk = request.query_params.get("pk", "")
        editing = pk.isdigit()
        form = (await self.scaffold_form(self._form_edit_rules if editing else self._form_create_rules))(
            await request.form()
        )
        if not form.validate():
            errors = "; ".join(f"{name}: {' '.join(map(str, texts))}" for name, texts in form.errors.items())
            return _answer(connection_check.ConnectionCheck(ok=False, error=errors, code=INVALID), 400)
        try:
            if editing:
                server = await run_db(_as_saved, acting(request), int(pk), _changes(form.data))
                check = await connection_check.check_server(server)
            else:
                check = await connection_check.check_settings(_changes(form.data))
        except Imap2ApiError as exc:
            failed = connection_check.ConnectionCheck(ok=False, error=admin_message(exc), code=exc.code)
            return _answer(failed, 400)
        return _answer(check, 200)


def check_message(check: connection_check.ConnectionCheck) -> str:
    """The outcome of a connection test as the admin reads it: the folders, or the error and its code."""
    if check.code in (INVALID, "THROTTLED"):
        return f"Not tested: {check.error}"
    if not check.ok:
        return f"Connection failed [{check.code}]: {check.error}"
    folders = ", ".join(check.folders) or "none"
    return (
        f"Connection OK: logged in; {len(check.folders)} folder(s): {folders}. "
        f"Capabilities: {' '.join(check.capabilities)}."
    )


def _answer(
    check: connection_check.ConnectionCheck, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The test endpoint's answer: the REST body of ``POST /api/imap-servers/test/``, and the message."""
    return JSONResponse(
        {**check.as_dict(), "message": check_message(check)}, status_code=status, headers=headers
    )


def _progress(model: SyncRun, _attribute: str) -> str:
    """Fetched of total, as the CLI's bar shows it; the total is 0 until every folder is examined."""
    if not model.progress_total:
        if model.status in crud_runs.ACTIVE:
            return "counting the messages to fetch…"
        return f"{model.progress_done}"
    percent = 100 * model.progress_done // model.progress_total
    return f"{model.progress_done}/{model.progress_total} ({percent} %)"


def _total(model: SyncRun, _attribute: str) -> str:
    """The details page's total: not a bare 0 while it is still being counted."""
    if not model.progress_total and model.status in crud_runs.ACTIVE:
        return "not known yet (counting the messages to fetch…)"
    return str(model.progress_total)


class SyncRunAdmin(AdminView, model=SyncRun):
    """Every sync of every server, with progress while it runs (read-only)."""

    icon = "fa-solid fa-rotate"
    name = "Sync run"
    refresh_seconds = REFRESH_SECONDS  # progress, while a run is under way
    can_create = False
    can_edit = False
    can_delete = False
    column_list = [
        "id",
        "imap_server_id",
        "status",
        "trigger",
        "progress_done",
        "messages_new",
        "messages_updated",
        "messages_deleted",
        "error_code",
        "created_at",
        "finished_at",
    ]
    column_labels = {
        "imap_server_id": "Server",
        "progress_done": "Progress",
        "messages_new": "New",
        "messages_updated": "Updated",
        "messages_deleted": "Deleted",
    }
    column_formatters = {
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "progress_done": _progress,
    }
    column_formatters_detail = {**column_formatters, "progress_total": _total, "error": preformatted}
    column_filters = [IdFilter(SyncRun.imap_server_id, ImapServer.name, title="Server")]
