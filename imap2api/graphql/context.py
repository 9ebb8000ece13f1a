"""The per-request GraphQL context: who is asking, and how resolvers reach the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlmodel import Session
from strawberry.fastapi import BaseContext

from imap2api.crud import users as crud_users
from imap2api.db import run_db
from imap2api.errors import Imap2ApiError, InvalidToken, Unauthenticated
from imap2api.graphql.loaders import Loaders, build_loaders
from imap2api.models import User
from imap2api.services.principal import Principal

T = TypeVar("T")
P = ParamSpec("P")


def token_from_header(value: str | None) -> str | None:
    """The key of an ``Authorization: Token KEY`` header; "" when the header is malformed."""
    if not value:
        return None
    parts = value.split()
    if not parts or parts[0].lower() != "token":
        return None  # another scheme (Basic, Bearer...) is as good as no credentials, as in DRF
    if len(parts) != 2:
        return ""
    return parts[1]


async def authenticate(header: str | None) -> tuple[User | None, Imap2ApiError | None]:
    """Resolve an Authorization header to a user, or to the error a protected field should raise."""
    key = token_from_header(header)
    if key is None:
        return None, Unauthenticated()
    if not key:
        return None, InvalidToken("Invalid token header. Token string should not contain spaces.")
    user = await run_db(crud_users.user_for_token, key=key)
    if user is None:
        return None, InvalidToken()
    return user, None


@dataclass(frozen=True)
class ServiceRunner:
    """Calls ``fn(session, principal, ...)`` in a worker thread with its own committed session."""

    principal: Principal

    async def __call__(
        self, fn: Callable[Concatenate[Session, Principal, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a service function as this principal."""
        return await run_db(fn, self.principal, *args, **kwargs)


@dataclass
class Context(BaseContext):
    """What every resolver sees: the user (or why there is none) and per-request loaders."""

    user: User | None = None
    auth_error: Imap2ApiError | None = None
    # The websocket an operation came over (its client address and app), None over HTTP and REST.
    websocket: Any = field(default=None, repr=False)
    _loaders: Loaders | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def loaders(self) -> Loaders:
        """This request's DataLoaders (built on first use, for the authenticated user)."""
        if self._loaders is None:
            self._loaders = build_loaders(self.require_user().id or 0)
        return self._loaders

    def fresh_loaders(self) -> None:
        """Forget cached loads: a websocket's context outlives one event of a subscription."""
        self._loaders = None

    def require_user(self) -> User:
        """The authenticated user, or raise the authentication error."""
        if self.user is None:
            raise self.auth_error or Unauthenticated()
        return self.user

    @property
    def principal(self) -> Principal:
        """The authenticated user as the services' acting principal (or raise the authentication error)."""
        return Principal.of_user(self.require_user())

    @property
    def run(self) -> ServiceRunner:
        """Runs service functions as the authenticated user; raises the authentication error first.

        A property, so that ``info.context.run(fn, parse_id(id))`` checks the caller before it
        evaluates the arguments: an anonymous caller learns nothing about ids.
        """
        return ServiceRunner(self.principal)
