"""IMAP servers, always scoped by owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from imap2api.crud.common import Page, paginate
from imap2api.crud.oauth2 import forget_tokens
from imap2api.enums import AuthType, TlsMode
from imap2api.errors import NotFound
from imap2api.fields import field_names
from imap2api.models import Folder, ImapServer, ImapServerSettings, utcnow
from imap2api.oauth2.rules import SMTP_TOKEN_DESTINATION_FIELDS, TOKEN_DESTINATION_FIELDS
from imap2api.security import encrypt_secret
from imap2api.validation import DESTINATION_FIELDS

# The settings its owner writes (the password apart), as models.ImapServerSettings declares them.
WRITABLE = field_names(ImapServerSettings)


def create_server(session: Session, *, owner_id: int, data: dict[str, Any]) -> ImapServer:
    """Store a new server from validated data, encrypting its password."""
    server = ImapServer(
        owner_id=owner_id,
        # "": an OAuth2 account, which logs in with tokens.
        password_encrypted=encrypt_secret(data["password"]) if data.get("password") else "",
        smtp_password_encrypted=encrypt_secret(data["smtp_password"]) if data.get("smtp_password") else "",
        **{name: data[name] for name in WRITABLE if name in data},
    )
    _keep_tls_consistent(server, data)
    _apply_oauth2_secrets(server, data)
    session.add(server)
    session.flush()
    return server


def get_server(session: Session, *, owner_id: int | None, server_id: int) -> ImapServer:
    """The server with this id owned by ``owner_id`` (None: any owner, for workers and admins)."""
    server = session.get(ImapServer, server_id)
    if server is None or (owner_id is not None and server.owner_id != owner_id):
        raise NotFound()
    return server


def server_exists(session: Session, *, server_id: int) -> bool:
    """Whether the server is still stored (read afresh, never from the session's identity map)."""
    return session.exec(select(ImapServer.id).where(ImapServer.id == server_id)).first() is not None


def list_servers(session: Session, *, owner_id: int, page: int, page_size: int) -> Page[ImapServer]:
    """One page of a user's servers, oldest first."""
    statement = select(ImapServer).where(ImapServer.owner_id == owner_id).order_by(col(ImapServer.id))
    return paginate(session, statement, page=page, page_size=page_size)


def update_server(
    session: Session, *, owner_id: int | None, server_id: int, data: dict[str, Any]
) -> ImapServer:
    """Apply validated changes; only the given fields change (``owner_id`` None: an admin's change)."""
    server = get_server(session, owner_id=owner_id, server_id=server_id)
    limit_before = (server.sync_limit_type, server.sync_limit_value)
    before = {name: getattr(server, name) for name in WRITABLE}
    for name in WRITABLE:
        if name in data:
            setattr(server, name, data[name])
    _keep_tls_consistent(server, data)
    _forget_secrets_left_behind(server, before, data)
    if (server.sync_limit_type, server.sync_limit_value) != limit_before:
        # The window moved: no folder may take the "nothing changed" shortcut next time.
        session.exec(update(Folder).where(col(Folder.imap_server_id) == server_id).values(message_count=-1))
    if data.get("password"):
        server.password_encrypted = encrypt_secret(data["password"])
    if data.get("smtp_password") is not None:
        # "": SMTP logs in with the IMAP password again.
        smtp_password = data["smtp_password"]
        server.smtp_password_encrypted = encrypt_secret(smtp_password) if smtp_password else ""
    _apply_oauth2_secrets(server, data)
    server.updated_at = utcnow()
    session.add(server)
    session.flush()
    return server


def _forget_secrets_left_behind(server: ImapServer, before: dict[str, Any], data: dict[str, Any]) -> None:
    """A stored secret never follows a change of where it is sent, whatever the auth type is now.

    Validation asks for the secret in use again; this drops the one not in use (the password of an
    oauth2 server, the tokens of a password server), which a later switch of auth_type would send.
    """

    def moved(fields: tuple[str, ...]) -> bool:
        return any(getattr(server, name) != before[name] for name in fields)

    if server.auth_type == AuthType.OAUTH2:
        if moved(DESTINATION_FIELDS) and not data.get("password"):
            server.password_encrypted = ""
        return
    token_fields: tuple[str, ...] = TOKEN_DESTINATION_FIELDS
    if not server.smtp_password_encrypted and data.get("smtp_password") is None:
        token_fields += SMTP_TOKEN_DESTINATION_FIELDS  # SMTP would log in with the tokens
    if moved(token_fields) and data.get("oauth2_refresh_token") is None:
        forget_tokens(server)


def _apply_oauth2_secrets(server: ImapServer, data: dict[str, Any]) -> None:
    """Store the OAuth2 secrets a caller gave (encrypted): "" drops the tokens (or the client secret);
    new tokens make the account usable again (``needs_reauth`` false)."""
    if data.get("oauth2_client_secret") is not None:
        secret = data["oauth2_client_secret"]
        server.oauth2_client_secret_encrypted = encrypt_secret(secret) if secret else ""
    refresh, access = data.get("oauth2_refresh_token"), data.get("oauth2_access_token")
    if refresh == "":
        forget_tokens(server)
    if not (refresh or access):
        return
    if refresh:
        server.oauth2_refresh_token_encrypted = encrypt_secret(refresh)
    # A new refresh token without an access token: the stored access token may be of another grant.
    server.oauth2_access_token_encrypted = encrypt_secret(access) if access else ""
    server.oauth2_expires_at = data.get("oauth2_expires_at") if access else None
    server.oauth2_refreshed_at = utcnow()
    server.oauth2_token_stored = True
    server.needs_reauth = False


def _keep_tls_consistent(server: ImapServer, data: dict[str, Any]) -> None:
    """use_ssl == (tls_mode == "ssl") even for callers that skip validation (CLI, tests) and set one."""
    if "tls_mode" in data:
        server.use_ssl = server.tls_mode == TlsMode.SSL
    elif "use_ssl" in data:
        if server.use_ssl:
            server.tls_mode = TlsMode.SSL
        elif server.tls_mode == TlsMode.SSL:
            server.tls_mode = TlsMode.STARTTLS


def delete_server(session: Session, *, owner_id: int | None, server_id: int) -> None:
    """Delete a server; its folders, mail and runs go with it (ON DELETE CASCADE)."""
    server = get_server(session, owner_id=owner_id, server_id=server_id)
    session.delete(server)
    session.flush()


def server_fields(server: ImapServer) -> dict[str, Any]:
    """The stored writable fields, and which secrets are stored, for validating an update."""
    return {
        **{name: getattr(server, name) for name in WRITABLE},
        "password_set": bool(server.password_encrypted),
        "smtp_password_set": bool(server.smtp_password_encrypted),
        "oauth2_token_stored": server.oauth2_token_stored,
    }


def server_choices(session: Session) -> dict[int, list[tuple[int, str]]]:
    """(id, label) of every server, by owner id, for an admin form's server field (an owner's only)."""
    choices: dict[int, list[tuple[int, str]]] = {}
    for server in session.exec(select(ImapServer).order_by(col(ImapServer.id))):
        choices.setdefault(server.owner_id, []).append((server.id or 0, f"{server.name} (#{server.id})"))
    return choices
