"""Who may use /admin: active admins, logged in with their password, in a signed session cookie."""

from __future__ import annotations

import hashlib
import hmac

from sqladmin.authentication import AuthenticationBackend
from sqlmodel import Session
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from imap2api.config import settings
from imap2api.crud import users as crud_users
from imap2api.db import run_db
from imap2api.models import User

COOKIE_NAME = "imap2api_admin"


def session_signing_key() -> str:
    """The cookie-signing key: derived from the service's secret key, never the key itself."""
    secret = settings.resolved_secret_key.encode()
    return hmac.new(secret, b"imap2api-admin-session", hashlib.sha256).hexdigest()


def password_stamp(user: User) -> str:
    """A short digest of the stored password hash: a password change ends every session."""
    return hashlib.sha256(b"imap2api-admin:" + user.password_hash.encode()).hexdigest()[:20]


def _login(session: Session, *, username: str, password: str) -> tuple[int, str] | None:
    """(id, password stamp) of the admin these credentials log in, or None."""
    user = crud_users.authenticate_user(session, username=username, password=password)
    if user is None or not user.is_admin:
        return None
    return user.id or 0, password_stamp(user)


def _still_admin(session: Session, *, user_id: int, stamp: str) -> bool:
    """Whether the session's user is still an active admin with the same password."""
    user = crud_users.get_user(session, user_id=user_id)
    if user is None or not (user.is_active and user.is_admin):
        return False
    return hmac.compare_digest(password_stamp(user), stamp)


class AdminAuth(AuthenticationBackend):
    """Username and password login; a non-admin's login fails exactly like a wrong password."""

    def __init__(self) -> None:
        # SameSite=Strict: the browser never sends the cookie on a request started by another site.
        self.middlewares = [
            Middleware(
                SessionMiddleware,
                secret_key=session_signing_key(),
                session_cookie=COOKIE_NAME,
                max_age=int(settings.admin_session_hours * 3600),
                path="/admin",
                same_site="strict",
                https_only=settings.admin_cookie_secure,
            )
        ]

    async def login(self, request: Request) -> bool:
        """Check the login form; on success start a fresh session."""
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            return False
        found = await run_db(_login, username=username, password=password)
        request.session.clear()
        if found is None:
            return False
        request.session.update({"user_id": found[0], "stamp": found[1]})
        return True

    async def logout(self, request: Request) -> bool:
        """Forget the session."""
        request.session.clear()
        return True

    async def authenticate(self, request: Request) -> bool:
        """True while the session names an active admin whose password has not changed."""
        user_id, stamp = request.session.get("user_id"), request.session.get("stamp")
        if not isinstance(user_id, int) or not isinstance(stamp, str):
            return False
        if await run_db(_still_admin, user_id=user_id, stamp=stamp):
            return True
        request.session.clear()
        return False
