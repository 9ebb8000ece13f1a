"""Who issues an account's tokens: Google and Microsoft from the service's settings, or the server's own.

Google and Microsoft take their client, scope and URLs from ``IMAP2API_OAUTH2_*`` (the operator's, so
trusted); a ``custom`` provider is named by the server's owner (``oauth2_token_url``,
``oauth2_client_id``, ``oauth2_client_secret``), and its token URL passes the same address check as a
webhook's (``IMAP2API_OAUTH2_ALLOW_PRIVATE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imap2api.config import settings
from imap2api.enums import OAuth2Provider, TlsMode
from imap2api.models import ImapServer
from imap2api.security import DecryptionError, decrypt_secret

NOT_CONFIGURED = "OAUTH2_NOT_CONFIGURED"


class ProviderUnavailable(Exception):
    """The provider cannot be used: its client is not configured, or a stored secret cannot be read."""

    def __init__(self, message: str, code: str = NOT_CONFIGURED) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Provider:
    """Where tokens are obtained and refreshed, and the client imap2api is to that provider."""

    name: str
    token_url: str
    client_id: str
    client_secret: str = ""
    authorize_url: str = ""  # blank: no hosted flow (custom providers)
    scope: str = ""
    trusted: bool = True  # URLs from the settings; false: a caller's URL, checked before each request
    refresh_scope: str = ""  # sent with a refresh (Microsoft's v2.0 endpoint asks for it); "" none
    authorize_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImapPreset:
    """A provider's IMAP server, filled in when a server names the provider but no host."""

    host: str
    port: int = 993
    tls_mode: TlsMode = TlsMode.SSL


IMAP_PRESETS: dict[str, ImapPreset] = {
    OAuth2Provider.GOOGLE: ImapPreset("imap.gmail.com"),
    OAuth2Provider.MICROSOFT: ImapPreset("outlook.office365.com"),
}
# IMAP host → the provider whose tokens it takes, so that oauth2 on a Gmail host needs no provider named.
PROVIDER_OF_HOST = {
    "imap.gmail.com": OAuth2Provider.GOOGLE,
    "imap.googlemail.com": OAuth2Provider.GOOGLE,
    "outlook.office365.com": OAuth2Provider.MICROSOFT,
    "imap-mail.outlook.com": OAuth2Provider.MICROSOFT,
}


DISPLAY_NAMES: dict[str, str] = {OAuth2Provider.GOOGLE: "Google", OAuth2Provider.MICROSOFT: "Microsoft"}


def display_name(provider: str | None, default: str = "the provider") -> str:
    """Google, Microsoft, or ``default`` for a custom (or no) provider, in messages to people."""
    return DISPLAY_NAMES.get(provider or "", default)


def configured(name: str) -> Provider:
    """Google's or Microsoft's provider from the settings; ProviderUnavailable without a client id."""
    if name == OAuth2Provider.GOOGLE:
        if not settings.oauth2_google_client_id:
            raise ProviderUnavailable(_unset("GOOGLE"))
        return Provider(
            name=name,
            token_url=settings.oauth2_google_token_url,
            client_id=settings.oauth2_google_client_id,
            client_secret=settings.oauth2_google_client_secret,
            authorize_url=settings.oauth2_google_authorize_url,
            scope=settings.oauth2_google_scope,
            # offline + consent: Google hands out a refresh token only then (and again on each consent).
            authorize_params={"access_type": "offline", "prompt": "consent"},
        )
    if name == OAuth2Provider.MICROSOFT:
        if not settings.oauth2_microsoft_client_id:
            raise ProviderUnavailable(_unset("MICROSOFT"))
        tenant = settings.oauth2_microsoft_tenant or "common"
        return Provider(
            name=name,
            token_url=settings.oauth2_microsoft_token_url.replace("{tenant}", tenant),
            client_id=settings.oauth2_microsoft_client_id,
            client_secret=settings.oauth2_microsoft_client_secret,
            authorize_url=settings.oauth2_microsoft_authorize_url.replace("{tenant}", tenant),
            scope=settings.oauth2_microsoft_scope,
            authorize_params={"response_mode": "query"},
            refresh_scope=settings.oauth2_microsoft_scope,
        )
    raise ProviderUnavailable(f"{name!r} is not a provider with a hosted flow (google or microsoft)")


def _unset(prefix: str) -> str:
    """Why a provider cannot be used: the operator has not registered imap2api with it."""
    return (
        f"this imap2api has no {prefix.title()} OAuth2 client: the operator sets "
        f"IMAP2API_OAUTH2_{prefix}_CLIENT_ID (and _CLIENT_SECRET); see docs/oauth2.md"
    )


def provider_of(server: ImapServer) -> Provider:
    """The provider that refreshes this server's tokens."""
    if server.oauth2_provider != OAuth2Provider.CUSTOM:
        return configured(server.oauth2_provider or "")
    try:
        secret = (
            decrypt_secret(server.oauth2_client_secret_encrypted)
            if server.oauth2_client_secret_encrypted
            else ""
        )
    except DecryptionError as exc:
        raise ProviderUnavailable(str(exc), code="SECRET_KEY_CHANGED") from exc
    return Provider(
        name=OAuth2Provider.CUSTOM,
        token_url=server.oauth2_token_url,
        client_id=server.oauth2_client_id,
        client_secret=secret,
        trusted=False,
    )
