"""The OAuth2 rules of server settings (called by ``imap2api.validation.validate_server``).

- ``auth_type`` oauth2 needs a provider: named, or known from a Gmail or Office 365 host; a provider
  named without a host fills host, port and TLS (``providers.IMAP_PRESETS``).
- ``custom`` needs ``oauth2_token_url`` (https; http only with ``IMAP2API_OAUTH2_ALLOW_PRIVATE``) and
  ``oauth2_client_id``; the other providers take theirs from the settings, so those fields stay blank.
- Tokens are write-only: ``oauth2_refresh_token`` "" drops the stored tokens; ``oauth2_expires_at``
  goes with ``oauth2_access_token``; none of them with ``auth_type`` password.
- As with passwords, stored tokens are never sent somewhere new: changing where they go (host, port,
  TLS, the provider or its URL or client, and the SMTP server when SMTP logs in with OAuth2) needs
  ``oauth2_refresh_token`` in the same change, or "" to drop them and connect the account again.
"""

from __future__ import annotations

from typing import Any

import httpx

from imap2api.config import settings
from imap2api.enums import AuthType, OAuth2Provider
from imap2api.oauth2.providers import IMAP_PRESETS, PROVIDER_OF_HOST

AUTH_TYPES = tuple(AuthType)
PROVIDERS = tuple(OAuth2Provider)
TOKEN_FIELDS = ("oauth2_refresh_token", "oauth2_access_token", "oauth2_client_secret")
MAX_TOKEN_LENGTH = 16_384  # Microsoft's access tokens (JWTs) run to a few kilobytes
CUSTOM_FIELDS = ("oauth2_token_url", "oauth2_client_id")
# Where stored tokens are sent: changing one needs the refresh token again.
TOKEN_DESTINATION_FIELDS = (
    "host",
    "port",
    "use_ssl",
    "tls_mode",
    "tls_verify",
    "tls_ca_cert",
    "oauth2_provider",
    "oauth2_token_url",
    "oauth2_client_id",
)
SMTP_TOKEN_DESTINATION_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_auth")
TOKENS_AGAIN = (
    'Send oauth2_refresh_token again (or "" to drop the stored tokens and connect the account again): '
    "changing host, port, TLS, the SMTP server or the OAuth2 provider needs it, so that stored tokens are "
    "never sent to a server they were not given for."
)
REQUIRED_FOR_OAUTH2 = 'This field is required when auth_type is "oauth2".'


def resolved_auth_type(clean: dict[str, Any], current: dict[str, Any] | None) -> str:
    """The auth type once the change is applied."""
    value = clean.get("auth_type") or (current or {}).get("auth_type") or AuthType.PASSWORD
    return str(value)


def fill_host_preset(clean: dict[str, Any], current: dict[str, Any] | None) -> None:
    """On create, an oauth2 server naming Google or Microsoft but no host gets the provider's IMAP server."""
    if current is not None or clean.get("host") or clean.get("auth_type") != AuthType.OAUTH2:
        return
    preset = IMAP_PRESETS.get(str(clean.get("oauth2_provider")))
    if preset is None:
        return
    clean["host"] = preset.host
    if clean.get("port") is None:
        clean["port"] = preset.port
    if clean.get("tls_mode") is None and clean.get("use_ssl") is None:
        clean["tls_mode"] = preset.tls_mode.value


def check(clean: dict[str, Any], current: dict[str, Any] | None, errors: dict[str, list[str]]) -> None:
    """Apply the OAuth2 rules to a validated-so-far change (``current``: the stored fields, on update)."""
    stored = current or {}
    for name, choices in (("auth_type", AUTH_TYPES), ("oauth2_provider", PROVIDERS)):
        value = clean.get(name)
        if value is not None and value not in choices:
            errors.setdefault(name, []).append(f'"{value}" is not a valid choice.')
    if "auth_type" in errors or "oauth2_provider" in errors:
        return
    auth_type = resolved_auth_type(clean, current)
    if auth_type == AuthType.OAUTH2:
        _provider(clean, stored, errors)
    else:
        for name in (*TOKEN_FIELDS, "oauth2_expires_at"):
            if clean.get(name):
                errors.setdefault(name, []).append('Only with auth_type "oauth2".')
    for name in TOKEN_FIELDS:
        value = clean.get(name)
        if isinstance(value, str) and len(value) > MAX_TOKEN_LENGTH:
            errors.setdefault(name, []).append(
                f"Ensure this field has no more than {MAX_TOKEN_LENGTH} characters."
            )
    if clean.get("oauth2_expires_at") is not None and not clean.get("oauth2_access_token"):
        errors.setdefault("oauth2_expires_at", []).append("Only with oauth2_access_token.")
    if current is not None and auth_type == AuthType.OAUTH2:
        _require_tokens_for_new_destination(clean, stored, errors)


def _provider(clean: dict[str, Any], stored: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """An oauth2 server's provider: given, stored, or known from its host; and custom's own fields."""
    provider = clean.get("oauth2_provider") or stored.get("oauth2_provider")
    if not provider:
        host = clean.get("host") or stored.get("host") or ""
        provider = PROVIDER_OF_HOST.get(host)
        if provider is None:
            errors.setdefault("oauth2_provider", []).append(REQUIRED_FOR_OAUTH2)
            return
        clean["oauth2_provider"] = provider.value
    values = {name: clean.get(name, stored.get(name)) or "" for name in CUSTOM_FIELDS}
    if provider != OAuth2Provider.CUSTOM:
        for name in (*CUSTOM_FIELDS, "oauth2_client_secret"):
            if clean.get(name):
                errors.setdefault(name, []).append('Only for oauth2_provider "custom".')
        return
    for name in CUSTOM_FIELDS:
        if not values[name]:
            errors.setdefault(name, []).append('This field is required when oauth2_provider is "custom".')
    url = values["oauth2_token_url"]
    if url and "oauth2_token_url" not in errors and (reason := _url_error(url)):
        errors.setdefault("oauth2_token_url", []).append(reason)


def _url_error(url: str) -> str | None:
    """Why a custom token URL is refused (None: it is usable)."""
    try:
        parsed = httpx.URL(url)
        _ = parsed.port
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return "Enter a valid URL."
    if not parsed.host or parsed.userinfo or parsed.scheme not in ("https", "http"):
        return "Enter a valid URL."
    if parsed.scheme == "http" and not settings.oauth2_allow_private:
        return "Enter an https URL: the refresh token and client secret are sent to it."
    return None


def _require_tokens_for_new_destination(
    clean: dict[str, Any], stored: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """Stored tokens may not follow a change of where they are sent, unless new ones come with it."""
    if not stored.get("oauth2_token_stored") or clean.get("oauth2_refresh_token") is not None:
        return
    fields = list(TOKEN_DESTINATION_FIELDS)
    if stored.get("smtp_host") and not stored.get("smtp_password_set") and not clean.get("smtp_password"):
        fields += SMTP_TOKEN_DESTINATION_FIELDS  # SMTP logs in with the token too
    if any(
        name in clean and name not in errors and clean[name] is not None and clean[name] != stored.get(name)
        for name in fields
    ):
        errors.setdefault("oauth2_refresh_token", []).append(TOKENS_AGAIN)
