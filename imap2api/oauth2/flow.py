"""The hosted flow's parts: PKCE (RFC 7636), the state, the provider's authorization URL, return URLs."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode, urlsplit

from imap2api.config import settings
from imap2api.oauth2.providers import Provider

CALLBACK_PATH = "/oauth2/callback"


def new_state() -> str:
    """An unguessable state (256 bits): it alone ties the provider's answer to a user and a server."""
    return secrets.token_urlsafe(32)


def state_hash(state: str) -> str:
    """The stored form of a state (only its SHA-256, like API token keys)."""
    return hashlib.sha256(state.encode()).hexdigest()


def new_verifier() -> str:
    """A PKCE code verifier: 64 URL-safe characters (43–128 allowed)."""
    return secrets.token_urlsafe(48)


def challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    provider: Provider, *, redirect_uri: str, state: str, verifier: str, login_hint: str = ""
) -> str:
    """Where the browser goes to consent: code flow, the provider's scope, S256 PKCE, the state."""
    params = {
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": provider.scope,
        "state": state,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
        **provider.authorize_params,
    }
    if login_hint and "@" in login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in provider.authorize_url else "?"
    return provider.authorize_url + separator + urlencode(params)


def callback_url(request_base: str) -> str:
    """The redirect URI registered with the provider: ``IMAP2API_PUBLIC_URL`` (else the request's base)."""
    base = (settings.public_url or request_base).rstrip("/")
    return base + CALLBACK_PATH


def _origin(url: str) -> str:
    """``https://host[:port]`` of a URL, lower-cased ("" when it has none)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def return_allowed(return_to: str, *, own_url: str) -> bool:
    """Whether the flow may send the browser to ``return_to``: a path here, this service's own origin,
    or an origin of ``IMAP2API_OAUTH2_RETURN_ORIGINS`` (never any URL at all: no open redirect)."""
    if any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in return_to) or len(return_to) > 2000:
        return False
    if return_to.startswith("/") and not return_to.startswith("//"):
        return True
    origin = _origin(return_to)
    allowed = {_origin(own_url), *(_origin(item) for item in settings.oauth2_return_origins)}
    return bool(origin) and origin in allowed


def with_outcome(return_to: str, outcome: dict[str, str]) -> str:
    """``return_to`` with the outcome's parameters added to its query."""
    separator = "&" if "?" in return_to else "?"
    return return_to + separator + urlencode(outcome)
