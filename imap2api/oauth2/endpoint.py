"""Requests to a provider's token endpoint (RFC 6749 §4.1.3, §6): exchange a code, refresh a token.

Bounded like a webhook delivery: a timeout per request (``IMAP2API_OAUTH2_TIMEOUT_SECONDS``), no
redirects, no proxies from the environment, at most ``MAX_ANSWER_BYTES`` read. A custom provider's URL
is resolved and checked first (imap2api.webhooks.addresses), so that an owner cannot make the worker
post to an internal service. Nothing a token endpoint answers is quoted beyond the OAuth2 error code
and a short description, and no token ever appears in an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from imap2api import __version__
from imap2api.config import settings
from imap2api.models import utcnow
from imap2api.oauth2.providers import Provider
from imap2api.webhooks.addresses import AddressRefused, ResolutionFailed, resolve_target

MAX_ANSWER_BYTES = 65_536
_MAX_DESCRIPTION = 200
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
USER_AGENT = f"imap2api/{__version__}"


@dataclass(frozen=True)
class Tokens:
    """What a token endpoint issued (``refresh_token`` "" when it issued none: keep the old one)."""

    access_token: str
    refresh_token: str
    expires_at: datetime | None
    scope: str = ""


class TokenRefused(Exception):
    """The endpoint answered an OAuth2 error (``error``: invalid_grant, invalid_client...)."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class EndpointFailed(Exception):
    """No OAuth2 answer: the endpoint could not be reached, timed out or answered something else."""


def exchange_code(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str) -> Tokens:
    """Trade an authorization code (with its PKCE verifier) for tokens."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    return _request(provider, form, secrets=(code, code_verifier))


def refresh(provider: Provider, refresh_token: str) -> Tokens:
    """A new access token (and, with providers that rotate them, a new refresh token)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if provider.refresh_scope:
        form["scope"] = provider.refresh_scope
    return _request(provider, form, secrets=(refresh_token,))


def _request(provider: Provider, form: dict[str, str], *, secrets: tuple[str, ...]) -> Tokens:
    """POST the grant with the client's credentials (client_secret_post, as Google and Microsoft take)."""
    form = {**form, "client_id": provider.client_id}
    if provider.client_secret:
        form["client_secret"] = provider.client_secret
    hidden = (*secrets, provider.client_secret)
    url, headers, extensions = _target(provider)
    headers = {**headers, "accept": "application/json", "user-agent": USER_AGENT}
    seconds = settings.oauth2_timeout_seconds
    try:
        with httpx.Client(timeout=httpx.Timeout(seconds), trust_env=False, follow_redirects=False) as client:
            request = client.build_request("POST", url, data=form, headers=headers, extensions=extensions)
            response = client.send(request, stream=True)
            try:
                body = _read(response)
            finally:
                response.close()
    except httpx.TimeoutException:
        raise EndpointFailed(f"the token endpoint did not answer within {seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise EndpointFailed(f"could not reach the token endpoint: {type(exc).__name__}") from None
    return _tokens(response.status_code, body, hidden)


def _target(provider: Provider) -> tuple[httpx.URL | str, dict[str, str], dict[str, str]]:
    """The URL to post to, with the Host header and SNI name when a custom URL was resolved and checked."""
    if provider.trusted:
        return provider.token_url, {}, {}
    try:
        target = resolve_target(provider.token_url, allow_private=settings.oauth2_allow_private)
    except AddressRefused as exc:
        reason = str(exc).replace("deliveries", "requests").replace("WEBHOOK_", "OAUTH2_")
        raise EndpointFailed(f"the token URL's host {reason}") from None
    except ResolutionFailed as exc:
        raise EndpointFailed(f"could not reach the token endpoint: {exc}") from None
    except (ValueError, httpx.InvalidURL):
        raise EndpointFailed("the token URL is not an http(s) URL with a host") from None
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    return target.url, {"host": target.host_header}, extensions


def _read(response: httpx.Response) -> bytes:
    """At most MAX_ANSWER_BYTES of the body: a token answer is small, whatever the endpoint sends."""
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise EndpointFailed(f"the token endpoint's answer is over {MAX_ANSWER_BYTES} bytes")
    return body


def _tokens(status: int, body: bytes, hidden: tuple[str, ...]) -> Tokens:
    """The tokens of a 200 answer; TokenRefused for an OAuth2 error; EndpointFailed for anything else."""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        raise EndpointFailed(f"the token endpoint answered HTTP {status} without an OAuth2 (JSON) answer")
    if status == 200 and isinstance(answer.get("access_token"), str) and answer["access_token"]:
        return Tokens(
            access_token=answer["access_token"],
            refresh_token=answer["refresh_token"] if isinstance(answer.get("refresh_token"), str) else "",
            expires_at=_expiry(answer.get("expires_in")),
            scope=answer["scope"] if isinstance(answer.get("scope"), str) else "",
        )
    error = answer.get("error")
    if not isinstance(error, str) or not error:
        raise EndpointFailed(f"the token endpoint answered HTTP {status} without an access token")
    description = answer.get("error_description")
    text = _printable(description if isinstance(description, str) else "", hidden)
    raise TokenRefused(_printable(error, hidden)[:64], text, status)


def _expiry(expires_in: object) -> datetime | None:
    """When a token given ``expires_in`` seconds of life expires (None: the endpoint did not say)."""
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)  # some endpoints send the number as a string
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and 0 <= expires_in < 10**9:
        return utcnow() + timedelta(seconds=float(expires_in))
    return None


def _printable(text: str, hidden: tuple[str, ...]) -> str:
    """One short printable line, with any secret the request carried blanked out."""
    for secret in hidden:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(_UNPRINTABLE.sub(" ", text).split())[:_MAX_DESCRIPTION]
