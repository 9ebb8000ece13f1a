"""The User type."""

from __future__ import annotations

from datetime import datetime

import strawberry

from imap2api.crud.users import token_expires_at
from imap2api.models import ApiToken, User


@strawberry.type(name="User")
class UserType:
    """An account of this imap2api instance."""

    id: strawberry.ID
    username: str
    is_admin: bool
    created_at: datetime


def to_gql_user(user: User) -> UserType:
    """Convert a User row to its GraphQL type."""
    return UserType(
        id=strawberry.ID(str(user.id)),
        username=user.username,
        is_admin=user.is_admin,
        created_at=user.created_at,
    )


@strawberry.type
class TokenPayload:
    """A freshly issued API token: send it as ``Authorization: Token <token>``."""

    token: str
    user: UserType


@strawberry.type(name="ApiToken")
class ApiTokenType:
    """One of the caller's API tokens; the key itself was shown once and is not stored."""

    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The key's first 8 characters, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = strawberry.field(description="Null: the token does not expire.")


def to_gql_api_token(token: ApiToken) -> ApiTokenType:
    """Convert an ApiToken row (never its hash)."""
    return ApiTokenType(
        id=strawberry.ID(str(token.id)),
        name=token.name,
        prefix=token.key_prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token_expires_at(token),
    )
