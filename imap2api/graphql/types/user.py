"""The User type."""

from __future__ import annotations

import strawberry

from imap2api.crud.users import token_expires_at
from imap2api.graphql import derive
from imap2api.models import ApiToken, ApiTokenPublic, User, UserPublic


@derive.output_type(UserPublic, name="User")
class UserType:
    """An account of this imap2api instance."""


def to_gql_user(user: User) -> UserType:
    """Convert a User row to its GraphQL type."""
    return derive.to_gql(UserType, user)


@strawberry.type
class TokenPayload:
    """A freshly issued API token: send it as ``Authorization: Token <token>``."""

    token: str
    user: UserType


@derive.output_type(
    ApiTokenPublic,
    name="ApiToken",
    first=("id", "name", "prefix"),
    sources={"prefix": "key_prefix", "expires_at": token_expires_at},
)
class ApiTokenType:
    """One of the caller's API tokens; the key itself was shown once and is not stored."""


def to_gql_api_token(token: ApiToken) -> ApiTokenType:
    """Convert an ApiToken row (never its hash)."""
    return derive.to_gql(ApiTokenType, token)
