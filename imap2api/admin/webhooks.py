"""Admin views of webhooks (secrets shown once, on creation and rotation) and their deliveries."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from markupsafe import Markup
from sqladmin import action
from sqladmin.flash import Flash
from sqladmin.secret import Secret
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import BooleanField, Form, SelectField, SelectMultipleField, StringField, validators, widgets

from imap2api.admin.common import (
    REFRESH_SECONDS,
    AdminView,
    IdFilter,
    act_on_selected,
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
    server_choices,
    user_choices,
)
from imap2api.crud import webhooks as crud_webhooks
from imap2api.db import run_db
from imap2api.enums import DEFAULT_EVENT_TYPES
from imap2api.errors import Imap2ApiError
from imap2api.models import User, Webhook, WebhookDelivery
from imap2api.security import decrypt_secret, encrypt_secret
from imap2api.services import webhooks
from imap2api.webhooks.validation import EVENT_TYPES

SECRET_TITLE = "Signing secret"
ALL_SERVERS = "All of the owner's servers"
EVERY_SERVER = "Every server"  # the group of ALL_SERVERS, beside one group per owner
# The owner of the webhook being edited, in this request: sqladmin makes the form class before it loads
# the webhook, and the edit form has no owner field to read it from.
EDITED_OWNER: ContextVar[int | None] = ContextVar("edited_webhook_owner", default=None)
SECRET_LABEL = "Copy it now: it is shown only this once. Receivers verify signatures with it."


def optional_id(value: object) -> int | None:
    """A select's value as an id; the empty choice ("all servers") is None."""
    return None if value in (None, "", "None") else int(str(value))


class WebhookForm(Form):
    """An endpoint; validated by the same rules as the API."""

    owner_id = SelectField("Owner", coerce=int, validate_choice=False)
    url = StringField("URL", [validators.InputRequired()])
    events = SelectMultipleField(
        "Events",
        choices=[(name, name) for name in EVENT_TYPES],
        default=[name.value for name in DEFAULT_EVENT_TYPES],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    imap_server_id = SelectField("Only for IMAP server", coerce=optional_id, validate_choice=False)
    is_active = BooleanField("Active", default=True)


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    """The form's values as service changes ("all servers" is an explicit null)."""
    return {
        "url": (data.get("url") or "").strip(),
        "events": list(data.get("events") or []),
        "is_active": bool(data.get("is_active")),
        "imap_server": data.get("imap_server_id"),
    }


class WebhookAdmin(AdminView, model=Webhook):
    """Webhooks of every user: create, edit, rotate the secret, send a test, disable."""

    icon = "fa-solid fa-paper-plane"
    form = WebhookForm
    form_columns = ["url", "events", "imap_server_id", "is_active"]
    form_create_rules = ["owner_id", *form_columns]  # type: ignore[list-item]
    form_edit_rules = list(form_columns)  # type: ignore[arg-type]
    column_list = ["id", "owner_id", "url", "events", "imap_server_id", "is_active", "disabled_reason"]
    column_details_exclude_list = ["secret_encrypted"]
    column_labels = {"owner_id": "Owner", "imap_server_id": "Only for server", "is_active": "Active"}
    column_formatters = {
        "owner_id": link_to("user", "owner_id"),
        "imap_server_id": link_to("imap-server", "imap_server_id"),
        "disabled_reason": excerpt(60),
    }
    column_formatters_detail = {
        **column_formatters,
        "disabled_reason": preformatted,
        "id": lambda model, _attribute, request: Markup('{} · <a href="{}">deliveries</a>').format(
            model.id, list_url(request, "webhook-delivery", webhook_id=model.id)
        ),
    }
    column_searchable_list = ["url"]
    column_filters = [IdFilter(Webhook.owner_id, User.username, title="Owner")]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        """The form, with current users and servers as choices; the owner only on creation (it is
        fixed after: an edit form with no owner selected would show, and post, the first user).
        Servers: on edit the owner's only, on creation grouped by owner (the service refuses a server
        of another owner either way)."""
        with_owner = rules is None or "owner_id" in rules
        users = await user_choices() if with_owner else []
        by_owner = await server_choices()

        class Bound(WebhookForm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                if with_owner:
                    self.owner_id.choices = users
                    self.imap_server_id.choices = {
                        EVERY_SERVER: [("", ALL_SERVERS)],
                        **{label: by_owner[owner] for owner, label in users if owner in by_owner},
                    }
                else:
                    del self["owner_id"]
                    owned = by_owner.get(EDITED_OWNER.get() or 0, [])  # ids start at 1
                    self.imap_server_id.choices = [("", ALL_SERVERS), *owned]

        return Bound

    async def get_object_for_edit(self, request: Request) -> Any:
        """The webhook to edit; its owner's servers are the form's choices (``EDITED_OWNER``)."""
        found = await super().get_object_for_edit(request)
        EDITED_OWNER.set(found.owner_id if found is not None else None)
        return found

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        """Stored values as the form shows them (events as a list)."""
        return {**await super().get_form_data_for_edit(obj), "events": crud_webhooks.subscribed_events(obj)}

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        """Create through the API's rules, and show the new secret once."""
        webhook, secret = await expected(
            run_db(webhooks.create, acting(request), _changes(data), owner_id=data.get("owner_id") or None)
        )
        Secret.reveal_once(request, secret, title=SECRET_TITLE, label=SECRET_LABEL)
        return webhook

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Update through the API's rules (re-activating clears the failure flag)."""
        return await expected(run_db(webhooks.update, acting(request), int(pk), _changes(data)))

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete the webhook and its delivery history."""
        await expected(run_db(webhooks.delete, acting(request), int(pk)))

    async def details_context(self, request: Request) -> dict[str, Any]:
        """Reveal a secret a rotation just left for this page (then forget it)."""
        sealed = request.session.pop("webhook_secret", None)
        if isinstance(sealed, str):
            Secret.reveal_once(request, decrypt_secret(sealed), title=SECRET_TITLE, label=SECRET_LABEL)
        return {}

    @action(
        name="rotate-secret",
        label="Rotate secret",
        add_in_list=False,
        confirmation_message="Receivers must switch to the new secret: the old one stops working now.",
    )
    async def rotate_secret(self, request: Request) -> Response:
        """Give the webhook a new secret and show it once on its page."""
        ids = selected_ids(request)
        if len(ids) != 1:
            Flash.error(request, "Rotate one webhook at a time.")
            return back(request, self.identity)
        _, secret = await expected(run_db(webhooks.rotate_secret, acting(request), ids[0]))
        # The page after the redirect shows it; until then it rides in the session, encrypted.
        request.session["webhook_secret"] = encrypt_secret(secret)
        return RedirectResponse(request.url_for("admin:details", identity=self.identity, pk=ids[0]), 302)

    @action(name="send-test", label="Send test event")
    async def send_test(self, request: Request) -> Response:
        """Send a ``webhook.test`` event to the selected webhooks now, and show the deliveries."""
        ids = selected_ids(request)
        try:
            deliveries = await each_selected(request, webhooks.send_test, ids)
        except Imap2ApiError as exc:
            Flash.error(request, admin_message(exc))
            return back(request, self.identity)
        Flash.success(request, f"Test event queued: delivery {', '.join(f'#{d}' for d in deliveries)}.")
        filters = {"webhook_id": ids[0]} if len(ids) == 1 else {}
        return RedirectResponse(list_url(request, "webhook-delivery", **filters), 302)

    @action(
        name="disable", label="Disable", confirmation_message="No events are sent to it until enabled again."
    )
    async def disable(self, request: Request) -> Response:
        """Stop sending events to the selected webhooks."""
        count = await run_db(webhooks.set_active, acting(request), selected_ids(request), active=False)
        Flash.success(request, f"{count} webhook(s) disabled.")
        return back(request, self.identity)

    @action(name="enable", label="Enable")
    async def enable(self, request: Request) -> Response:
        """Send events to the selected webhooks again (clears a failure flag)."""
        count = await run_db(webhooks.set_active, acting(request), selected_ids(request), active=True)
        Flash.success(request, f"{count} webhook(s) enabled.")
        return back(request, self.identity)


class WebhookDeliveryAdmin(AdminView, model=WebhookDelivery):
    """Every delivery attempt: status, response, error; redeliver one (read-only otherwise)."""

    icon = "fa-solid fa-truck"
    name = "Webhook delivery"
    name_plural = "Webhook deliveries"
    refresh_seconds = REFRESH_SECONDS
    can_create = False
    can_edit = False
    can_delete = False
    column_list = [
        "id",
        "webhook_id",
        "event_type",
        "event_id",
        "attempt",
        "status",
        "response_status",
        "duration_ms",
        "error",
        "created_at",
    ]
    column_labels = {"webhook_id": "Webhook", "response_status": "HTTP", "duration_ms": "ms"}
    column_formatters = {"webhook_id": link_to("webhook", "webhook_id"), "error": excerpt(60)}
    column_formatters_detail = {**column_formatters, "error": preformatted, "response_body": preformatted}
    column_filters = [IdFilter(WebhookDelivery.webhook_id, Webhook.url, title="Webhook")]

    @action(
        name="redeliver",
        label="Redeliver",
        confirmation_message="The same event (same id) is sent again as a new attempt.",
    )
    async def redeliver(self, request: Request) -> Response:
        """Send the selected deliveries' events again."""
        return await act_on_selected(
            request, webhooks.redeliver, identity=self.identity, done="Queued again: delivery"
        )
