"""Server-side admin sessions: the cookie carries a random key, the database only its SHA-256."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from imap2api.models import AdminSession, User, utcnow
from imap2api.security import hash_token_key


def delete_expired_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Delete every session past its expiry; returns how many there were."""
    statement = delete(AdminSession).where(col(AdminSession.expires_at) <= (now or utcnow()))
    return session.exec(statement).rowcount or 0


def start_session(session: Session, *, user_id: int, lifetime: timedelta) -> str:
    """Record a new session of ``user_id`` and return its key (shown to the browser only).

    Expired sessions are swept here: only a login adds rows, so the table stays as small as the
    number of sessions that may still be used.
    """
    delete_expired_sessions(session)
    key = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        AdminSession(user_id=user_id, key_hash=hash_token_key(key), created_at=now, expires_at=now + lifetime)
    )
    session.flush()
    return key


def session_user(session: Session, *, key: str) -> User | None:
    """The user of the unexpired session with this key, or None (revoked, expired or unknown)."""
    return session.exec(
        select(User)
        .join(AdminSession, col(AdminSession.user_id) == col(User.id))
        .where(AdminSession.key_hash == hash_token_key(key), col(AdminSession.expires_at) > utcnow())
    ).first()


def end_session(session: Session, *, key: str) -> bool:
    """Revoke the session with this key; True when it existed."""
    statement = delete(AdminSession).where(col(AdminSession.key_hash) == hash_token_key(key))
    return bool(session.exec(statement).rowcount)
