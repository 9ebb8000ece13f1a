"""Admin views of users and their API tokens (hashes are never shown)."""

from __future__ import annotations

from typing import Any

from sqladmin import action
from sqladmin.flash import Flash
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from wtforms import BooleanField, Form, PasswordField, StringField, validators

from imap2api.admin.common import AdminView, IdFilter, back, expected, link_to, selected_ids
from imap2api.crud import users as crud_users
from imap2api.db import run_db
from imap2api.models import ApiToken, User

MIN_PASSWORD = 8


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


def _acting_id(request: Request) -> int:
    return int(request.session.get("user_id") or 0)


def _revoke(session: Session, *, user_ids: list[int]) -> int:
    return sum(crud_users.revoke_tokens(session, user_id=user_id) for user_id in user_ids)


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

    async def insert_model(self, request: Request, data: dict) -> Any:
        """Create through the same rules as ``imap2api createuser``."""
        return await expected(
            run_db(crud_users.save_user, user_id=None, acting_id=_acting_id(request), **_form_fields(data))
        )

    async def update_model(self, request: Request, pk: str, data: dict) -> Any:
        """Update; a non-blank password replaces the old one (and ends that user's admin sessions)."""
        return await expected(
            run_db(crud_users.save_user, user_id=int(pk), acting_id=_acting_id(request), **_form_fields(data))
        )

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete a user and everything they own (servers, mail, webhooks), but never oneself."""
        await expected(run_db(crud_users.delete_user, user_id=int(pk), acting_id=_acting_id(request)))

    @action(
        name="revoke-tokens",
        label="Revoke all tokens",
        confirmation_message="Every API token of the selected users stops working now.",
    )
    async def revoke_tokens(self, request: Request) -> Response:
        """Delete every API token of the selected users."""
        count = await run_db(_revoke, user_ids=selected_ids(request))
        Flash.success(request, f"Revoked {count} token(s).")
        return back(request, self.identity)

    @action(
        name="make-admin",
        label="Make admin",
        confirmation_message="The selected users may then log in here and manage everything.",
    )
    async def make_admin(self, request: Request) -> Response:
        """Give the selected users admin rights."""
        count = await run_db(crud_users.make_admins, user_ids=selected_ids(request))
        Flash.success(request, f"{count} user(s) made admin.")
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
