"""Who may use /admin: active admins, logged in with their password, in a server-side session.

The signed cookie carries a random session key; the database keeps its hash, so logging out (or
the session's expiry) ends it for every copy of the cookie, not just in the browser that logged out.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqladmin.authentication import AuthenticationBackend
from sqlmodel import Session
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from imap2api.config import settings
from imap2api.crud import admin_sessions as crud_sessions
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


def _login(
    session: Session, *, username: str, password: str, previous_key: str | None
) -> dict[str, object] | None:
    """The session data of a new login of the admin these credentials name, or None.

    The browser's previous session, if any, is revoked whatever the outcome.
    """
    if previous_key:
        crud_sessions.end_session(session, key=previous_key)
    user = crud_users.authenticate_user(session, username=username, password=password)
    if user is None or not user.is_admin:
        return None
    lifetime = timedelta(hours=settings.admin_session_hours)
    key = crud_sessions.start_session(session, user_id=user.id or 0, lifetime=lifetime)
    return {"key": key, "user_id": user.id or 0, "stamp": password_stamp(user)}


def _still_admin(session: Session, *, key: str, user_id: int, stamp: str) -> bool:
    """Whether the session is unrevoked and unexpired, and its user still an active admin with the
    same password."""
    user = crud_sessions.session_user(session, key=key)
    if user is None or user.id != user_id or not (user.is_active and user.is_admin):
        return False
    return hmac.compare_digest(password_stamp(user), stamp)


def _session_key(request: Request) -> str | None:
    key = request.session.get("key")
    return key if isinstance(key, str) and key else None


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
        found = await run_db(_login, username=username, password=password, previous_key=_session_key(request))
        request.session.clear()
        if found is None:
            return False
        request.session.update(found)
        return True

    async def logout(self, request: Request) -> bool:
        """Revoke the session in the database, so no copy of the cookie opens it again."""
        key = _session_key(request)
        if key is not None:
            await run_db(crud_sessions.end_session, key=key)
        request.session.clear()
        return True

    async def authenticate(self, request: Request) -> bool:
        """True while the session is unrevoked and names an active admin whose password has not changed."""
        key = _session_key(request)
        user_id, stamp = request.session.get("user_id"), request.session.get("stamp")
        if key is None or not isinstance(user_id, int) or not isinstance(stamp, str):
            return False
        if await run_db(_still_admin, key=key, user_id=user_id, stamp=stamp):
            return True
        request.session.clear()
        return False
