"""Who is acting: a user on their own objects, an admin on everyone's, or the service itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from imap2api.errors import ValidationFailed
from imap2api.models import User


class Role(StrEnum):
    """Which objects a principal may act on."""

    USER = "user"  # their own
    ADMIN = "admin"  # everyone's, through the admin interface
    SYSTEM = "system"  # everyone's: the scheduler, the CLI, workers


@dataclass(frozen=True)
class Principal:
    """The acting party; ``owner_scope`` is what ownership checks compare against."""

    role: Role
    user_id: int | None = None

    @classmethod
    def of_user(cls, user: User) -> Principal:
        """A user acting on their own objects (API tokens, GraphQL, REST)."""
        return cls(Role.USER, user.id)

    @classmethod
    def of_admin(cls, user_id: int) -> Principal:
        """An admin acting on every user's objects."""
        return cls(Role.ADMIN, user_id)

    @classmethod
    def system(cls) -> Principal:
        """imap2api itself (scheduler, CLI, workers)."""
        return cls(Role.SYSTEM)

    @property
    def owner_scope(self) -> int | None:
        """The owner id every object must have, or None when any owner's objects are in reach."""
        return self.user_id if self.role is Role.USER else None

    def may_act_for(self, owner_id: int) -> bool:
        """Whether an object owned by ``owner_id`` is within reach."""
        return self.owner_scope is None or self.owner_scope == owner_id

    def owner_for_new(self, owner_id: int | None) -> int:
        """The owner of an object being created: the user themselves, or the one an admin chose."""
        if self.role is Role.USER:
            assert self.user_id is not None
            return self.user_id
        if owner_id is None:
            raise ValidationFailed({"owner": ["Choose the user this belongs to."]})
        return owner_id
