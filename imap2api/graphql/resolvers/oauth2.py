"""Connecting an account with its OAuth2 provider: the hosted flow's start (services.oauth2)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from imap2api.enums import OAuth2Provider
from imap2api.graphql.context import Context
from imap2api.graphql.derive import gql_enum
from imap2api.ids import parse_id
from imap2api.services import oauth2

Info = strawberry.Info[Context, None]
gql_enum(OAuth2Provider)


@strawberry.type(description="Where to send the browser so that its owner lets imap2api use the account.")
class OAuth2Authorization:
    url: str = strawberry.field(
        description="The provider's consent page; it sends the browser back to "
        "/oauth2/callback, which stores the tokens and starts a sync."
    )
    expires_at: datetime = strawberry.field(description="The flow must finish before this.")


def request_base(info: Info) -> str:
    """This service's base URL as the caller reached it (IMAP2API_PUBLIC_URL wins, in services.oauth2)."""
    request = info.context.request
    return str(request.base_url) if request is not None else ""


@strawberry.type
class OAuth2Mutation:
    """The hosted OAuth2 flow."""

    @strawberry.mutation(
        name="startOAuth2Authorization",  # not the automatic startOauth2Authorization: OAuth2, as in the type
        description="Start connecting a server with Google or Microsoft: send the browser to the answer's "
        "url. "
        "returnTo: where the browser goes afterwards (a path here, or an origin of "
        "IMAP2API_OAUTH2_RETURN_ORIGINS), with imap_server and oauth2=connected or oauth2=error added.",
    )
    async def start_oauth2_authorization(
        self, info: Info, provider: OAuth2Provider, imap_server: strawberry.ID, return_to: str | None = None
    ) -> OAuth2Authorization:
        """State, PKCE, the authorization URL."""
        started = await info.context.run(
            oauth2.start,
            provider=provider.value,
            server_id=parse_id(imap_server),
            request_base=request_base(info),
            return_to=return_to or "",
        )
        return OAuth2Authorization(url=started.url, expires_at=started.expires_at)
