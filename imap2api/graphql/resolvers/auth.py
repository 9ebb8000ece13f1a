"""Authentication: issuing tokens and telling who is asking."""

from __future__ import annotations

import strawberry
from sqlmodel import Session

from imap2api.config import settings
from imap2api.crud import users as crud_users
from imap2api.crud.common import clamp_page_size
from imap2api.errors import InvalidCredentials, ValidationFailed
from imap2api.graphql.context import Context
from imap2api.graphql.ids import parse_id
from imap2api.graphql.types.pagination import Page, to_gql_page
from imap2api.graphql.types.user import ApiTokenType, TokenPayload, UserType, to_gql_api_token, to_gql_user
from imap2api.models import User


def _issue_token(session: Session, *, username: str, password: str) -> tuple[User, str] | None:
    """Check credentials and issue a token in one transaction."""
    user = crud_users.authenticate_user(session, username=username, password=password)
    if user is None:
        return None
    return user, crud_users.create_token(session, user_id=user.id or 0, name="token-auth")


@strawberry.type
class AuthQuery:
    """Queries about the caller."""

    @strawberry.field(description="The authenticated user.")
    def me(self, info: strawberry.Info[Context, None]) -> UserType:
        """The user whose token made this request."""
        return to_gql_user(info.context.require_user())

    @strawberry.field(description="The caller's API tokens, newest first.")
    async def api_tokens(
        self, info: strawberry.Info[Context, None], page: int = 1, page_size: int | None = None
    ) -> Page[ApiTokenType]:
        """One page of tokens: name, prefix, when issued, last used and expiring."""
        user = info.context.require_user()
        size = clamp_page_size(page_size, default=settings.page_size, maximum=settings.max_page_size)
        result = await info.context.db(crud_users.page_tokens, user_id=user.id, page=page, page_size=size)
        return to_gql_page(result, to_gql_api_token)


@strawberry.type
class AuthMutation:
    """Logging in, and managing the caller's tokens."""

    @strawberry.mutation(description="Exchange a username and password for an API token.")
    async def token_auth(
        self, info: strawberry.Info[Context, None], username: str, password: str
    ) -> TokenPayload:
        """Log in; the token is shown once and stored hashed."""
        blank = {
            name: ["This field may not be blank."]
            for name, value in (("username", username), ("password", password))
            if not value
        }
        if blank:
            raise ValidationFailed(blank)
        issued = await info.context.db(_issue_token, username=username, password=password)
        if issued is None:
            raise InvalidCredentials()
        user, key = issued
        return TokenPayload(token=key, user=to_gql_user(user))

    @strawberry.mutation(description="Revoke one of the caller's API tokens (it stops working at once).")
    async def revoke_api_token(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> bool:
        """Delete a token of the caller's; another user's token is not found."""
        user = info.context.require_user()
        await info.context.db(crud_users.revoke_token, user_id=user.id, token_id=parse_id(id))
        return True
