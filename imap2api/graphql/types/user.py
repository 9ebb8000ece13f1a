"""The User type."""

from __future__ import annotations

from datetime import datetime

import strawberry

from imap2api.models import User


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
