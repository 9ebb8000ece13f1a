"""Users and their API tokens."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from imap2api.config import settings
from imap2api.crud.common import Page, paginate
from imap2api.errors import NotFound, ValidationFailed
from imap2api.models import ApiToken, User, utcnow
from imap2api.security import hash_password, hash_token_key, new_token_key, verify_password


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a wrong name costs as long as a wrong
    password; made on first use (scrypt costs ~50 ms: not at import)."""
    return hash_password("imap2api-timing-equaliser")


TAKEN = "A user with that username already exists."


def normalize_username(username: str) -> str:
    """NFKC, as Django does: ``ａｌｉｃｅ`` (fullwidth) and ``alice`` are one name."""
    return unicodedata.normalize("NFKC", username).strip()


USERNAME_MAX = 150  # users.username is VARCHAR(150)


def clean_username(session: Session, *, username: str, except_id: int | None = None) -> str:
    """The username to store: NFKC-normalised, not blank, no NUL, fits the column, not taken (ignoring
    case); raises ValidationFailed. Length is checked after NFKC, which can lengthen a name."""
    username = normalize_username(username)
    if not username or "\x00" in username:
        raise ValidationFailed({"username": ["This field may not be blank."]})
    if len(username) > USERNAME_MAX:
        raise ValidationFailed(
            {"username": [f"Ensure this field has no more than {USERNAME_MAX} characters."]}
        )
    if username_taken(session, username=username, except_id=except_id):
        raise ValidationFailed({"username": [TAKEN]})
    return username


def username_taken(session: Session, *, username: str, except_id: int | None = None) -> bool:
    """Whether another user already has this name, ignoring case (``Alice`` is taken by ``alice``)."""
    wanted = normalize_username(username).casefold()
    return any(
        normalize_username(name).casefold() == wanted
        for user_id, name in session.exec(select(User.id, User.username))
        if user_id != except_id
    )


def create_user(session: Session, *, username: str, password: str, is_admin: bool = False) -> User:
    """Create a user with a hashed password; raises ValidationFailed for a name ``clean_username`` refuses."""
    username = clean_username(session, username=username)
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, user_id: int) -> User | None:
    """The user with this id, if any."""
    return session.get(User, user_id)


def get_user_by_username(session: Session, *, username: str) -> User | None:
    """The user with this username (NFKC-normalised, then exact), if any."""
    return session.exec(select(User).where(User.username == normalize_username(username))).first()


def set_password(session: Session, *, user: User, password: str) -> None:
    """Replace a user's password."""
    user.password_hash = hash_password(password)
    session.add(user)


def authenticate_user(session: Session, *, username: str, password: str) -> User | None:
    """The active user these credentials log in, or None."""
    # No stored name holds NUL (PostgreSQL cannot even compare one): such a login simply fails.
    user = None if "\x00" in username else get_user_by_username(session, username=username)
    if user is None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, user.password_hash) or not user.is_active:
        return None
    return user


def create_token(session: Session, *, user_id: int, name: str = "") -> str:
    """Issue a new token for a user and return its key (only its hash is stored)."""
    key = new_token_key()
    session.add(ApiToken(user_id=user_id, key_hash=hash_token_key(key), key_prefix=key[:8], name=name))
    session.flush()
    return key


def token_expires_at(token: ApiToken) -> datetime | None:
    """When a token stops working (``IMAP2API_TOKEN_TTL_HOURS`` after it was issued), or None."""
    if settings.token_ttl_hours <= 0:
        return None
    return token.created_at + timedelta(hours=settings.token_ttl_hours)


def _live(token: ApiToken, now: datetime) -> bool:
    """Whether a token has not expired."""
    expires = token_expires_at(token)
    return expires is None or now < expires


def user_for_token(session: Session, *, key: str) -> User | None:
    """The active user owning this unexpired token key, or None."""
    row = session.exec(
        select(User, ApiToken)
        .join(ApiToken, col(ApiToken.user_id) == col(User.id))
        .where(ApiToken.key_hash == hash_token_key(key))
    ).first()
    now = utcnow()
    if row is None or not row[0].is_active or not _live(row[1], now):
        return None
    user, token = row
    # Throttle last-used writes: once a minute is precise enough and keeps reads read-only.
    last = token.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is None or (now - last).total_seconds() > 60:
        token.last_used_at = now
        session.add(token)
    return user


def page_tokens(session: Session, *, user_id: int, page: int, page_size: int) -> Page[ApiToken]:
    """One page of a user's tokens, newest first."""
    statement = select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id).desc())
    return paginate(session, statement, page=page, page_size=page_size)


def revoke_token(session: Session, *, user_id: int, token_id: int) -> None:
    """Delete one of a user's tokens; NotFound when it is not theirs."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound()
    session.delete(token)
    session.flush()


def revoke_tokens(session: Session, *, user_ids: Sequence[int]) -> int:
    """Delete every token of these users; returns how many there were."""
    result = session.exec(delete(ApiToken).where(col(ApiToken.user_id).in_(list(user_ids))))
    return result.rowcount or 0


def user_id_for_token_hash(session: Session, *, key_hash: str) -> int | None:
    """The id of the user owning a live token, by the token's stored hash (no side effects)."""
    token = session.exec(select(ApiToken).where(ApiToken.key_hash == key_hash)).first()
    return token.user_id if token is not None and _live(token, utcnow()) else None


def make_admins(session: Session, *, user_ids: list[int]) -> int:
    """Give these users admin rights; returns how many did not have them."""
    users = session.exec(select(User).where(col(User.id).in_(user_ids), User.is_admin == False))  # noqa: E712
    changed = 0
    for user in users:
        user.is_admin = True
        session.add(user)
        changed += 1
    return changed


def user_choices(session: Session) -> list[tuple[int, str]]:
    """(id, "name (#id)") of every user, by name, for a form's owner field."""
    return [
        (user.id or 0, f"{user.username} (#{user.id})")
        for user in session.exec(select(User).order_by(col(User.username)))
    ]
