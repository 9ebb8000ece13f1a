"""Users and their API tokens: log in, list and revoke tokens; accounts as an admin manages them."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from imap2api.crud import users as crud_users
from imap2api.crud.common import Page
from imap2api.errors import InvalidCredentials, NotFound, ValidationFailed
from imap2api.models import ApiToken, User
from imap2api.services.paging import page_number, page_size
from imap2api.services.principal import Principal, Role

LOGIN_TOKEN_NAME = "token-auth"
NOT_YOURSELF = "You cannot remove your own admin rights or deactivate yourself."
# The one password rule, for the CLI, the admin interface and every other way a password is set.
MIN_PASSWORD_LENGTH = 8
PASSWORD_REQUIRED = "A password is required for a new user."
PASSWORD_TOO_SHORT = f"Ensure this field has at least {MIN_PASSWORD_LENGTH} characters."


def check_password(password: str) -> None:
    """Refuse (ValidationFailed under ``password``) a blank password or one under MIN_PASSWORD_LENGTH."""
    if not password:
        raise ValidationFailed({"password": [PASSWORD_REQUIRED]})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed({"password": [PASSWORD_TOO_SHORT]})


def issue_token(session: Session, *, username: str, password: str) -> tuple[User, str]:
    """Check credentials and issue a token in one transaction; returns the user and the key."""
    blank = {
        name: ["This field may not be blank."]
        for name, value in (("username", username), ("password", password))
        if not value
    }
    if blank:
        raise ValidationFailed(blank)
    user = crud_users.authenticate_user(session, username=username, password=password)
    if user is None:
        raise InvalidCredentials()
    return user, crud_users.create_token(session, user_id=user.id or 0, name=LOGIN_TOKEN_NAME)


def page_tokens(
    session: Session, actor: Principal, *, number: int, size: int | None, last: bool = False
) -> Page[ApiToken]:
    """One page of the user's own tokens, newest first."""
    return crud_users.page_tokens(
        session, user_id=_self(actor), page=page_number(number, last=last), page_size=page_size(size)
    )


def revoke_token(session: Session, actor: Principal, token_id: int) -> None:
    """Revoke one of the user's own tokens (another user's is not found)."""
    crud_users.revoke_token(session, user_id=_self(actor), token_id=token_id)


def owner_for_new(session: Session, actor: Principal, owner_id: int | None) -> int:
    """The owner of an object being created: the user themselves, or an existing user an admin chose."""
    owner = actor.owner_for_new(owner_id)
    if actor.role is not Role.USER and crud_users.get_user(session, user_id=owner) is None:
        raise ValidationFailed({"owner": ["Choose the user this belongs to."]})
    return owner


def create_user(
    session: Session, actor: Principal, *, username: str, password: str, is_admin: bool = False
) -> User:
    """A new user (CLI, admin): the name must be free and the password pass ``check_password``."""
    _require_manager(actor)
    check_password(password)
    return crud_users.create_user(session, username=username, password=password, is_admin=is_admin)


def save_user(
    session: Session,
    actor: Principal,
    user_id: int | None,
    *,
    username: str,
    password: str,
    is_admin: bool,
    is_active: bool,
) -> User:
    """Create (``user_id`` None) or update a user; a blank password keeps the current one.

    An admin cannot remove their own admin rights or deactivate themselves. Raises
    ValidationFailed (blank or taken username, a password ``check_password`` refuses) or NotFound.
    """
    _require_manager(actor)
    try:
        if user_id is None:
            user = create_user(session, actor, username=username, password=password)
        else:
            username = crud_users.clean_username(session, username=username, except_id=user_id)
            found = crud_users.get_user(session, user_id=user_id)
            if found is None:
                raise NotFound()
            user = found
            if user_id == actor.user_id and not (is_admin and is_active):
                raise ValidationFailed({"non_field_errors": [NOT_YOURSELF]})
            user.username = username
            if password:
                check_password(password)
                crud_users.set_password(session, user=user, password=password)
        user.is_admin, user.is_active = is_admin, is_active
        session.add(user)
        session.flush()
    except IntegrityError:
        raise ValidationFailed({"username": [crud_users.TAKEN]}) from None
    return user


def set_password(session: Session, actor: Principal, *, username: str, password: str) -> User:
    """Replace a user's password (CLI); ``check_password`` applies. Their admin sessions end with it."""
    _require_manager(actor)
    user = _named(session, username)
    check_password(password)
    crud_users.set_password(session, user=user, password=password)
    session.flush()
    return user


def set_admin(session: Session, actor: Principal, *, username: str, is_admin: bool) -> bool:
    """Give a user admin rights or take them away (CLI); returns whether anything changed."""
    _require_manager(actor)
    user = _named(session, username)
    if user.id == actor.user_id and not is_admin:
        raise ValidationFailed({"non_field_errors": [NOT_YOURSELF]})
    if user.is_admin == is_admin:
        return False
    user.is_admin = is_admin
    session.add(user)
    session.flush()
    return True


def delete_user(session: Session, actor: Principal, user_id: int) -> None:
    """Delete a user and all they own (ON DELETE CASCADE), never the admin doing it."""
    _require_manager(actor)
    if user_id == actor.user_id:
        raise ValidationFailed({"non_field_errors": ["You cannot delete yourself."]})
    user = crud_users.get_user(session, user_id=user_id)
    if user is not None:
        session.delete(user)
        session.flush()


def make_admins(session: Session, actor: Principal, user_ids: list[int]) -> int:
    """Give these users admin rights; returns how many did not have them."""
    _require_manager(actor)
    return crud_users.make_admins(session, user_ids=user_ids)


def revoke_all_tokens(session: Session, actor: Principal, user_ids: list[int]) -> int:
    """Delete every API token of these users; returns how many there were."""
    _require_manager(actor)
    return crud_users.revoke_tokens(session, user_ids=user_ids)


def _named(session: Session, username: str) -> User:
    """The user with this name (as logins match it), or NotFound."""
    user = crud_users.get_user_by_username(session, username=username)
    if user is None:
        raise NotFound()
    return user


def _self(actor: Principal) -> int:
    """The acting user's own id (token management is always about oneself)."""
    if actor.user_id is None:
        raise NotFound()
    return actor.user_id


def _require_manager(actor: Principal) -> None:
    """Accounts are managed by admins and the CLI only."""
    if actor.role is Role.USER:
        raise NotFound()
