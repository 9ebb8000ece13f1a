"""The memory bound of an operation: how much message text (bodies, megabytes each) its answer may carry.

Each operation, and each event of a subscription, gets ``IMAP2API_MAX_RESPONSE_BODY_CHARS``.
The bodies loader checks a batch fits before fetching it, so the refused bodies are never read
into memory; every body field then spends its length (a body selected twice counts twice, as
it is sent twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar

from strawberry.extensions import SchemaExtension

from imap2api.config import settings
from imap2api.errors import ResultTooLarge


class BodyBudget:
    """The characters of message bodies one answer may still carry."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    @property
    def remaining(self) -> int:
        """How many characters are left."""
        return max(0, self.limit - self.spent)

    def error(self) -> ResultTooLarge:
        """The error refusing an answer that would pass the budget."""
        return ResultTooLarge(
            f"The answer would carry more than {self.limit} characters of message bodies "
            "(IMAP2API_MAX_RESPONSE_BODY_CHARS): ask for fewer emails, or leave out bodyText and bodyHtml."
        )

    def check(self, chars: int) -> None:
        """Raise ``ResultTooLarge`` unless ``chars`` more characters fit."""
        if self.limit > 0 and self.spent + chars > self.limit:
            raise self.error()

    def spend(self, chars: int) -> None:
        """Count ``chars`` characters sent, or raise ``ResultTooLarge`` when they do not fit."""
        self.check(chars)
        self.spent += chars


_current: ContextVar[BodyBudget | None] = ContextVar("imap2api_body_budget", default=None)


def current_budget() -> BodyBudget:
    """The budget of the operation running in this task (a fresh one outside any operation)."""
    budget = _current.get()
    if budget is None:
        budget = BodyBudget(settings.max_response_body_chars)
        _current.set(budget)
    return budget


class BodyBudgetExtension(SchemaExtension):
    """Schema extension giving each operation, and each subscription event, a fresh budget."""

    def on_execute(self) -> Iterator[None]:
        """A new budget for this operation (its task's context carries it to resolvers and loaders)."""
        _current.set(BodyBudget(settings.max_response_body_chars))
        yield

    def on_stream_result(self, result: object) -> Iterator[None]:
        """After a subscription event is sent, the next one starts from zero."""
        yield None
        current_budget().spent = 0
