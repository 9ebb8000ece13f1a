"""Admin views of webhooks (secrets shown once, on creation and rotation) and their deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup
from sqladmin import action
from sqladmin.flash import Flash
from sqladmin.secret import Secret
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import BooleanField, Form, SelectField, SelectMultipleField, StringField, validators, widgets

from imap2api.admin.common import (
    AdminView,
    IdFilter,
    back,
    excerpt,
    expected,
    link_to,
    list_url,
    preformatted,
    selected_ids,
    server_choices,
    user_choices,
)
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.crud import webhooks as crud_webhooks
from imap2api.db import run_db, session_scope
from imap2api.errors import Imap2ApiError, NotFound
from imap2api.models import User, Webhook, WebhookDelivery
from imap2api.security import decrypt_secret, encrypt_secret
from imap2api.webhooks.signing import new_secret
from imap2api.webhooks.validation import EVENT_TYPES, validate_webhook

SECRET_TITLE = "Signing secret"
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
        default=list(EVENT_TYPES),
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    imap_server_id = SelectField("Only for IMAP server", coerce=optional_id, validate_choice=False)
    is_active = BooleanField("Active", default=True)


def _clean(session: Session, *, owner_id: int, data: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The form's values through the API's rules; the server must belong to the owner."""
    fields = {
        "url": (data.get("url") or "").strip(),
        "events": list(data.get("events") or []),
        "is_active": bool(data.get("is_active")),
    }
    clean = validate_webhook(fields, creating=creating)
    server_id = data.get("imap_server_id")
    if server_id is not None:
        try:
            crud_servers.get_server(session, owner_id=owner_id, server_id=server_id)
        except NotFound:
            raise ValueError("imap_server: That server does not belong to the webhook's owner.") from None
    clean["imap_server"] = server_id
    return clean


def _create(session: Session, *, data: dict[str, Any]) -> tuple[Webhook, str]:
    owner = crud_users.get_user(session, user_id=data.get("owner_id") or 0)
    if owner is None:
        raise ValueError("owner: Choose the user this webhook belongs to.")
    clean = _clean(session, owner_id=owner.id or 0, data=data, creating=True)
    secret = new_secret()
    return crud_webhooks.create_webhook(session, owner_id=owner.id or 0, data=clean, secret=secret), secret


def _update(session: Session, *, webhook_id: int, data: dict[str, Any]) -> Webhook:
    webhook = crud_webhooks.get_webhook(session, owner_id=None, webhook_id=webhook_id)
    clean = _clean(session, owner_id=webhook.owner_id, data=data, creating=False)
    return crud_webhooks.update_webhook(session, owner_id=webhook.owner_id, webhook_id=webhook_id, data=clean)


def _rotate(session: Session, *, webhook_id: int) -> str:
    webhook = crud_webhooks.get_webhook(session, owner_id=None, webhook_id=webhook_id)
    secret = new_secret()
    crud_webhooks.set_webhook_secret(session, owner_id=webhook.owner_id, webhook_id=webhook_id, secret=secret)
    return secret


def _set_active(session: Session, *, webhook_ids: list[int], active: bool) -> int:
    changed = 0
    for webhook_id in webhook_ids:
        try:
            webhook = crud_webhooks.get_webhook(session, owner_id=None, webhook_id=webhook_id)
        except NotFound:
            continue
        if webhook.is_active != active:
            crud_webhooks.update_webhook(
                session, owner_id=None, webhook_id=webhook_id, data={"is_active": active}
            )
            changed += 1
    return changed


def _commit_and_enqueue(create: Callable[[Session, int], WebhookDelivery], ids: list[int]) -> list[int]:
    """Per id, commit the delivery ``create`` makes, then queue it; returns the delivery ids."""
    from imap2api.workers.webhooks import enqueue_delivery

    delivery_ids = []
    for object_id in ids:
        with session_scope() as session:
            delivery = create(session, object_id)
        enqueue_delivery(delivery.id or 0)
        delivery_ids.append(delivery.id or 0)
    return delivery_ids


def _test_delivery(session: Session, webhook_id: int) -> WebhookDelivery:
    """A ``webhook.test`` event for an active webhook, with its pending delivery."""
    webhook = crud_webhooks.get_webhook(session, owner_id=None, webhook_id=webhook_id)
    return crud_webhooks.create_test_delivery(session, owner_id=webhook.owner_id, webhook_id=webhook_id)


def _redelivery(session: Session, delivery_id: int) -> WebhookDelivery:
    """A new pending attempt of a delivery's event."""
    return crud_webhooks.create_redelivery(session, owner_id=None, delivery_id=delivery_id)


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
        """The form, with current users and servers as choices (the owner is fixed after creation)."""
        users = await user_choices()
        servers = [("", "All of the owner's servers"), *await server_choices()]

        class Bound(WebhookForm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.owner_id.choices = users
                self.imap_server_id.choices = servers

        return Bound

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        """Stored values as the form shows them (events as a list)."""
        return {**await super().get_form_data_for_edit(obj), "events": crud_webhooks.subscribed_events(obj)}

    async def insert_model(self, request: Request, data: dict) -> Any:
        """Create through the API's rules, and show the new secret once."""
        webhook, secret = await expected(run_db(_create, data=data))
        Secret.reveal_once(request, secret, title=SECRET_TITLE, label=SECRET_LABEL)
        return webhook

    async def update_model(self, request: Request, pk: str, data: dict) -> Any:
        """Update through the API's rules (re-activating clears the failure flag)."""
        return await expected(run_db(_update, webhook_id=int(pk), data=data))

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete the webhook and its delivery history."""
        await expected(run_db(crud_webhooks.delete_webhook, owner_id=None, webhook_id=int(pk)))

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
        secret = await expected(run_db(_rotate, webhook_id=ids[0]))
        # The page after the redirect shows it; until then it rides in the session, encrypted.
        request.session["webhook_secret"] = encrypt_secret(secret)
        return RedirectResponse(request.url_for("admin:details", identity=self.identity, pk=ids[0]), 302)

    @action(name="send-test", label="Send test event")
    async def send_test(self, request: Request) -> Response:
        """Send a ``webhook.test`` event to the selected webhooks now, and show the deliveries."""
        ids = selected_ids(request)
        try:
            deliveries = await run_in_threadpool(_commit_and_enqueue, _test_delivery, ids)
        except Imap2ApiError as exc:
            Flash.error(request, exc.message)
            return back(request, self.identity)
        Flash.success(request, f"Test event queued: delivery {', '.join(f'#{d}' for d in deliveries)}.")
        filters = {"webhook_id": ids[0]} if len(ids) == 1 else {}
        return RedirectResponse(list_url(request, "webhook-delivery", **filters), 302)

    @action(
        name="disable", label="Disable", confirmation_message="No events are sent to it until enabled again."
    )
    async def disable(self, request: Request) -> Response:
        """Stop sending events to the selected webhooks."""
        count = await run_db(_set_active, webhook_ids=selected_ids(request), active=False)
        Flash.success(request, f"{count} webhook(s) disabled.")
        return back(request, self.identity)

    @action(name="enable", label="Enable")
    async def enable(self, request: Request) -> Response:
        """Send events to the selected webhooks again (clears a failure flag)."""
        count = await run_db(_set_active, webhook_ids=selected_ids(request), active=True)
        Flash.success(request, f"{count} webhook(s) enabled.")
        return back(request, self.identity)


class WebhookDeliveryAdmin(AdminView, model=WebhookDelivery):
    """Every delivery attempt: status, response, error; redeliver one (read-only otherwise)."""

    icon = "fa-solid fa-truck"
    name = "Webhook delivery"
    name_plural = "Webhook deliveries"
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
        try:
            created = await run_in_threadpool(_commit_and_enqueue, _redelivery, selected_ids(request))
        except Imap2ApiError as exc:
            Flash.error(request, exc.message)
            return back(request, self.identity)
        Flash.success(request, f"Queued again: delivery {', '.join(f'#{d}' for d in created)}.")
        return back(request, self.identity)
