"""Admin views of users and their API tokens (hashes are never shown)."""

from __future__ import annotations

from typing import Any

from sqladmin import action
from sqladmin.flash import Flash
from starlette.requests import Request
from starlette.responses import Response
from wtforms import BooleanField, Form, PasswordField, StringField, validators

from imap2api.admin.common import AdminView, IdFilter, acting, back, expected, link_to, selected_ids
from imap2api.db import run_db
from imap2api.models import ApiToken, User
from imap2api.services import accounts

# The one rule (services.accounts.check_password), checked here too so the form shows it at once.
MIN_PASSWORD = accounts.MIN_PASSWORD_LENGTH


class UserForm(Form):
    """Create or edit a user; the password is only ever written, never shown."""

    username = StringField("Username", [validators.InputRequired(), validators.Length(max=150)])
    password = PasswordField(
        "Password",
        [validators.Optional(), validators.Length(min=MIN_PASSWORD)],
        description=f"At least {MIN_PASSWORD} characters. When editing, leave blank to keep the current one.",
    )
    is_admin = BooleanField("Admin (may use this interface)")
    is_active = BooleanField("Active", default=True)


def _form_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "username": data.get("username") or "",
        "password": data.get("password") or "",
        "is_admin": bool(data.get("is_admin")),
        "is_active": bool(data.get("is_active")),
    }


class UserAdmin(AdminView, model=User):
    """Users: create, edit, reset a password, make admin, revoke every token."""

    icon = "fa-solid fa-user"
    form = UserForm
    form_columns = ["username", "is_admin", "is_active"]
    column_list = ["id", "username", "is_admin", "is_active", "created_at"]
    column_details_list = ["id", "username", "is_admin", "is_active", "created_at"]
    column_searchable_list = ["username"]
    column_sortable_list = ["id", "username", "created_at"]

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        """Create through the same rules as ``imap2api createuser``."""
        return await expected(run_db(accounts.save_user, acting(request), None, **_form_fields(data)))

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Update; a non-blank password replaces the old one (and ends that user's admin sessions)."""
        return await expected(run_db(accounts.save_user, acting(request), int(pk), **_form_fields(data)))

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete a user and everything they own (servers, mail, webhooks), but never oneself."""
        await expected(run_db(accounts.delete_user, acting(request), int(pk)))

    @action(
        name="revoke-tokens",
        label="Revoke all tokens",
        confirmation_message="Every API token of the selected users stops working now.",
    )
    async def revoke_tokens(self, request: Request) -> Response:
        """Delete every API token of the selected users."""
        return await self._on_selected(request, accounts.revoke_all_tokens, "Revoked {} token(s).")

    @action(
        name="make-admin",
        label="Make admin",
        confirmation_message="The selected users may then log in here and manage everything.",
    )
    async def make_admin(self, request: Request) -> Response:
        """Give the selected users admin rights (saying how many already had them)."""
        ids = selected_ids(request)
        count = await run_db(accounts.make_admins, acting(request), ids)
        already = len(set(ids)) - count
        Flash.success(
            request, f"{count} user(s) made admin." + (f" {already} already were." if already > 0 else "")
        )
        return back(request, self.identity)

    async def get_object_for_details(self, request: Request) -> Any:
        """The user; remembers whether they are an admin, for the page's actions."""
        found = await super().get_object_for_details(request)
        request.state.details_is_admin = bool(found is not None and found.is_admin)
        return found

    def _visible_custom_actions(self, request: Request, in_detail: bool = False) -> dict[str, str]:
        """The actions; an admin's page offers no "Make admin" (the list's menu still does, for a
        selection, and says which already were)."""
        actions = super()._visible_custom_actions(request, in_detail)
        if in_detail and getattr(request.state, "details_is_admin", False):
            actions.pop("make-admin", None)
        return actions

    async def _on_selected(self, request: Request, change: Any, done: str) -> Response:
        """Apply a service function to the selected users, say how many it changed, go back."""
        count = await run_db(change, acting(request), selected_ids(request))
        Flash.success(request, done.format(count))
        return back(request, self.identity)


class ApiTokenAdmin(AdminView, model=ApiToken):
    """API tokens: who has one, when it was last used; delete one to revoke it."""

    icon = "fa-solid fa-key"
    name = "API token"
    can_create = False
    can_edit = False
    column_list = ["id", "user_id", "name", "key_prefix", "created_at", "last_used_at"]
    column_details_list = column_list
    column_labels = {"key_prefix": "Key starts with", "user_id": "User"}
    column_formatters = {"user_id": link_to("user", "user_id")}
    column_formatters_detail = column_formatters
    column_filters = [IdFilter(ApiToken.user_id, User.username, title="User")]
