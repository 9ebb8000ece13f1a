"""The expected failures of imap2api; each has a stable code that GraphQL and REST map onto."""

from __future__ import annotations


class Imap2ApiError(Exception):
    """Base class of every expected failure; ``code`` is stable and machine-readable."""

    code = "ERROR"
    # More for the caller, beside the code (GraphQL extensions in camelCase), e.g. retryAfter.
    extra: dict[str, object] = {}

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code)


class NotFound(Imap2ApiError):
    """Raised when an object does not exist or belongs to someone else."""

    code = "NOT_FOUND"

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message)


class Unauthenticated(Imap2ApiError):
    """Raised when a request carries no valid credentials."""

    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Authentication credentials were not provided.") -> None:
        super().__init__(message)


class InvalidToken(Unauthenticated):
    """Raised when the Authorization header names an unknown token."""

    def __init__(self, message: str = "Invalid token.") -> None:
        super().__init__(message)


class ValidationFailed(Imap2ApiError):
    """Raised when input is invalid; ``fields`` maps a field name to its messages."""

    code = "VALIDATION_ERROR"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))


class InvalidCredentials(ValidationFailed):
    """Raised when a username/password pair does not log in."""

    def __init__(self) -> None:
        super().__init__({"non_field_errors": ["Unable to log in with provided credentials."]})


class SyncFailed(Imap2ApiError):
    """Raised when a sync could not complete; ``code`` tells why (login, connection, TLS...)."""

    code = "SYNC_FAILED"

    def __init__(self, message: str, code: str | None = None, run_id: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        if code:
            self.code = code


class ResultTooLarge(Imap2ApiError):
    """Raised when an answer would carry more message text than one request may."""

    code = "RESULT_TOO_LARGE"


class CursorExpired(Imap2ApiError):
    """Raised when a change-feed cursor is older than the kept history: read everything again."""

    code = "CURSOR_EXPIRED"

    def __init__(
        self,
        message: str = "This cursor has expired: the changes since are no longer kept. "
        "Read the emails again and start from a new cursor.",
    ) -> None:
        super().__init__(message)


class ServerBusy(Imap2ApiError):
    """Raised when a sync of the server held it for longer than a write may wait: try again soon."""

    code = "SERVER_BUSY"


class Refused(Imap2ApiError):
    """Raised when a valid request cannot be done now or at all: ``code`` says why, ``status`` is REST's."""

    code = "REFUSED"

    def __init__(self, message: str, *, code: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.extra = {"status": status, **({"retryAfter": retry_after} if retry_after is not None else {})}
