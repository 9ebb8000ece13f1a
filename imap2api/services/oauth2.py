"""The hosted OAuth2 flow (docs/oauth2.md): start it for a server, finish it when the browser comes back.

``start`` binds a new state to the user and the server (stored hashed, with the encrypted PKCE
verifier, for ``IMAP2API_OAUTH2_STATE_MINUTES``) and gives the provider's authorization URL.
``finish`` takes the state (good once), trades the code for tokens with the verifier, stores them,
switches the server to oauth2 and queues its sync. The state alone names the server: the callback
needs no login, and a state nobody issued, or one used already, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import oauth2 as crud_oauth2
from imap2api.crud import servers as crud_servers
from imap2api.db import in_session, session_scope
from imap2api.enums import AuthType, OAuth2Provider
from imap2api.errors import NotFound, Refused, ValidationFailed
from imap2api.models import OAuth2State, utcnow
from imap2api.oauth2 import endpoint, flow
from imap2api.oauth2.providers import ProviderUnavailable, configured, display_name
from imap2api.security import DecryptionError, decrypt_secret, encrypt_secret
from imap2api.services import servers, sync
from imap2api.services.principal import Principal

HOSTED = (OAuth2Provider.GOOGLE, OAuth2Provider.MICROSOFT)


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and until when the flow may finish."""

    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Finished:
    """How a flow ended: connected (``ok``) or not, what to tell the person, where to send the browser."""

    ok: bool
    message: str
    server_id: int | None = None
    return_to: str = ""
    status: int = 200


def start(
    session: Session,
    actor: Principal,
    *,
    provider: str,
    server_id: int,
    request_base: str,
    return_to: str = "",
) -> Authorization:
    """The provider's authorization URL for connecting the server (the flow's state stored)."""
    if provider not in HOSTED:
        raise Refused(
            f"{provider!r} has no hosted flow: send oauth2_refresh_token (with oauth2_token_url and "
            "oauth2_client_id) on the server instead",
            code="OAUTH2_NO_HOSTED_FLOW",
            status=400,
        )
    server = servers.get(session, actor, server_id)
    try:
        chosen = configured(provider)
    except ProviderUnavailable as exc:
        raise Refused(exc.message, code=exc.code, status=400) from None
    redirect_uri = flow.callback_url(request_base)
    if return_to and not flow.return_allowed(return_to, own_url=redirect_uri):
        raise ValidationFailed(
            {
                "return_to": [
                    "Enter a path of this service or a URL of an origin in IMAP2API_OAUTH2_RETURN_ORIGINS."
                ]
            }
        )
    state, verifier = flow.new_state(), flow.new_verifier()
    expires_at = utcnow() + timedelta(minutes=settings.oauth2_state_minutes)
    crud_oauth2.prune_states(session)
    crud_oauth2.create_state(
        session,
        OAuth2State(
            state_hash=flow.state_hash(state),
            user_id=server.owner_id,
            imap_server_id=server_id,
            provider=provider,
            code_verifier_encrypted=encrypt_secret(verifier),
            redirect_uri=redirect_uri,
            return_to=return_to,
            expires_at=expires_at,
        ),
    )
    url = flow.authorization_url(
        chosen, redirect_uri=redirect_uri, state=state, verifier=verifier, login_hint=server.username
    )
    return Authorization(url, expires_at)


def finish(*, state: str, code: str, error: str = "", error_description: str = "") -> Finished:
    """Complete the flow the provider sent the browser back from; never raises for what it was sent."""
    with session_scope() as session:
        taken = crud_oauth2.take_state(session, state_hash=flow.state_hash(state)) if state else None
        if taken is not None and taken.expires_at <= utcnow():
            taken = None
    if taken is None:
        return Finished(
            False,
            "This sign-in link has expired or was already used. Start connecting the account again.",
            status=400,
        )
    name = display_name(taken.provider, default=taken.provider)
    if error:
        detail = f" ({error_description[:200]})" if error_description else ""
        refused = (
            "You declined access" if error == "access_denied" else f"{name} answered {error[:64]}{detail}"
        )
        return _failed(taken, f"{refused}; the account was not connected.")
    if not code:
        return _failed(taken, f"{name} sent no authorization code; the account was not connected.")
    try:
        provider = configured(taken.provider)
        verifier = decrypt_secret(taken.code_verifier_encrypted)
        tokens = endpoint.exchange_code(
            provider, code=code, redirect_uri=taken.redirect_uri, code_verifier=verifier
        )
    except ProviderUnavailable as exc:
        return _failed(taken, exc.message)
    except DecryptionError as exc:
        return _failed(taken, str(exc))
    except endpoint.TokenRefused as exc:
        return _failed(taken, f"{name} refused the authorization code ({exc}); start again.")
    except endpoint.EndpointFailed as exc:
        return _failed(taken, f"Getting the tokens from {name} failed: {exc}. Start again.")
    with session_scope() as session:
        try:
            server = crud_servers.get_server(session, owner_id=taken.user_id, server_id=taken.imap_server_id)
        except NotFound:
            return _failed(taken, "The IMAP server was deleted meanwhile.")
        server.auth_type = AuthType.OAUTH2
        server.oauth2_provider = OAuth2Provider(taken.provider)
        server.updated_at = utcnow()
        crud_oauth2.store_tokens(
            session,
            server,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at,
        )
        server.last_error = ""
        without_refresh = not server.oauth2_refresh_token_encrypted
    in_session(sync.request, Principal.system(), taken.imap_server_id)
    note = (
        f" {name} issued no refresh token, so the account works until the access token expires."
        if without_refresh
        else ""
    )
    return Finished(
        True,
        f"Connected: imap2api now signs in to this account with {name} and has started syncing it.{note}",
        server_id=taken.imap_server_id,
        return_to=taken.return_to,
    )


def _failed(taken: OAuth2State, message: str) -> Finished:
    """A flow that ended without tokens (the server keeps what it had)."""
    return Finished(False, message, server_id=taken.imap_server_id, return_to=taken.return_to, status=400)
