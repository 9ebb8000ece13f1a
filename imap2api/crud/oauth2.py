"""OAuth2 tokens of servers and the hosted flows under way (imap2api.oauth2); secrets stored encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from imap2api.enums import AuthType
from imap2api.models import ImapServer, OAuth2State, utcnow
from imap2api.security import encrypt_secret


def locked_server(session: Session, server_id: int) -> ImapServer | None:
    """The server read afresh and locked for this transaction (PostgreSQL: FOR UPDATE), so that two
    workers refreshing at once take turns and the second finds the first one's token."""
    statement = (
        select(ImapServer)
        .where(ImapServer.id == server_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(statement).first()


def store_tokens(
    session: Session,
    server: ImapServer,
    *,
    access_token: str,
    refresh_token: str,
    expires_at: datetime | None,
    now: datetime | None = None,
) -> None:
    """Store issued tokens (a blank refresh token keeps the stored one); the server no longer needs reauth."""
    server.oauth2_access_token_encrypted = encrypt_secret(access_token) if access_token else ""
    if refresh_token:
        server.oauth2_refresh_token_encrypted = encrypt_secret(refresh_token)
    server.oauth2_expires_at = expires_at
    server.oauth2_refreshed_at = now or utcnow()
    server.oauth2_token_stored = bool(server.oauth2_refresh_token_encrypted or access_token)
    server.needs_reauth = False
    session.add(server)
    session.flush()


def forget_tokens(server: ImapServer) -> None:
    """Drop the stored tokens (the caller adds and flushes): the account must be connected again."""
    server.oauth2_access_token_encrypted = server.oauth2_refresh_token_encrypted = ""
    server.oauth2_expires_at = server.oauth2_refreshed_at = None
    server.oauth2_token_stored = False
    server.needs_reauth = False


def mark_needs_reauth(session: Session, server: ImapServer, message: str) -> bool:
    """Flag a locked server whose tokens the provider refused; True only for the call that flagged it."""
    if server.needs_reauth:
        return False
    server.needs_reauth = True
    server.last_error = message
    session.add(server)
    session.flush()
    return True


def keepalive_due(session: Session, *, refreshed_before: datetime, limit: int = 1000) -> list[int]:
    """OAuth2 servers whose refresh token has not been used since ``refreshed_before`` (inactive ones too)."""
    statement = (
        select(ImapServer.id)
        .where(
            ImapServer.auth_type == AuthType.OAUTH2.value,
            col(ImapServer.needs_reauth).is_(False),
            ImapServer.oauth2_refresh_token_encrypted != "",
            col(ImapServer.oauth2_refreshed_at) < refreshed_before,
        )
        .order_by(col(ImapServer.oauth2_refreshed_at))
        .limit(limit)
    )
    return [server_id for server_id in session.exec(statement) if server_id is not None]


def create_state(session: Session, state: OAuth2State) -> None:
    """Store a hosted flow that has just started."""
    session.add(state)
    session.flush()


def take_state(session: Session, *, state_hash: str) -> OAuth2State | None:
    """The flow with this state, deleted as it is read (a state is good once); None if unknown."""
    state = session.get(OAuth2State, state_hash)
    if state is not None:
        session.delete(state)
        session.flush()
    return state


def prune_states(session: Session, *, before: datetime | None = None) -> int:
    """Delete the flows that expired without the browser coming back."""
    statement = delete(OAuth2State).where(col(OAuth2State.expires_at) < (before or utcnow()))
    return session.exec(statement).rowcount or 0
