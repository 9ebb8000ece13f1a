"""Authentication: issuing tokens and telling who is asking."""

from __future__ import annotations

import strawberry

from imap2api.db import run_db
from imap2api.graphql.context import Context
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.graphql.types.user import ApiTokenType, TokenPayload, UserType, to_gql_api_token, to_gql_user
from imap2api.ids import parse_id
from imap2api.services import accounts


@strawberry.type
class AuthQuery:
    """Queries about the caller."""

    @strawberry.field(description="The authenticated user.")
    def me(self, info: strawberry.Info[Context, None]) -> UserType:
        """The user whose token made this request."""
        return to_gql_user(info.context.require_user())

    @strawberry.field(description="The caller's API tokens, newest first.")
    async def api_tokens(
        self,
        info: strawberry.Info[Context, None],
        page: int = 1,
        page_size: int | None = None,
        last_page: bool = False,
    ) -> Page[ApiTokenType]:
        """One page of tokens: name, prefix, when issued, last used and expiring."""
        result = await info.context.run(accounts.page_tokens, number=page, size=page_size, last=last_page)
        return to_gql_page(result, to_gql_api_token)


@strawberry.type
class AuthMutation:
    """Logging in, and managing the caller's tokens."""

    @strawberry.mutation(description="Exchange a username and password for an API token.")
    async def token_auth(
        self, info: strawberry.Info[Context, None], username: str, password: str
    ) -> TokenPayload:
        """Log in; the token is shown once and stored hashed."""
        user, key = await run_db(accounts.issue_token, username=username, password=password)
        return TokenPayload(token=key, user=to_gql_user(user))

    @strawberry.mutation(description="Revoke one of the caller's API tokens (it stops working at once).")
    async def revoke_api_token(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> bool:
        """Delete a token of the caller's; another user's token is not found."""
        await info.context.run(accounts.revoke_token, parse_id(id))
        return True
