"""Error policy: expected failures keep their message and a stable code; the rest are masked."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

from imap2api.errors import Imap2ApiError, SyncFailed, ValidationFailed

log = logging.getLogger("imap2api.graphql")

MASKED_MESSAGE = "Internal server error."


def _expected(error: GraphQLError) -> GraphQLError:
    """Attach ``extensions.code`` (and field messages) to an expected failure."""
    original = error.original_error
    assert isinstance(original, Imap2ApiError)
    extensions = dict(error.extensions or {})
    extensions["code"] = original.code
    extensions.update(original.extra)
    if isinstance(original, ValidationFailed):
        # Keyed by the GraphQL (camelCase) names; the REST adapter turns them back into its own.
        extensions["fields"] = {to_camel_case(name): messages for name, messages in original.fields.items()}
    if isinstance(original, SyncFailed) and original.run_id is not None:
        extensions["syncRun"] = str(original.run_id)
    return GraphQLError(
        original.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


def _masked(error: GraphQLError) -> GraphQLError:
    """Replace an unexpected failure by a generic message, after logging it."""
    log.error("unexpected error in GraphQL resolver at %s", error.path, exc_info=error.original_error)
    return GraphQLError(
        MASKED_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


def apply_error_policy(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Sort each error into expected (coded), request (kept as is) or unexpected (masked)."""
    processed = []
    for error in errors:
        original = error.original_error
        if isinstance(original, Imap2ApiError):
            processed.append(_expected(error))
        elif original is None or isinstance(original, GraphQLError):
            # Parse and validation errors of the request itself are safe and useful to show.
            extensions = dict(error.extensions or {})
            extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
            error.extensions = extensions
            processed.append(error)
        else:
            processed.append(_masked(error))
    return processed


class ErrorPolicy(SchemaExtension):
    """Schema extension that applies ``apply_error_policy`` to every result."""

    def on_operation(self) -> Iterator[None]:
        """Rewrite the errors once the operation has run."""
        yield
        self._apply(self.execution_context.result)

    def on_stream_result(self, result: object) -> Iterator[None]:
        """Rewrite the errors of each subscription result before it is sent."""
        self._apply(result)
        yield None

    @staticmethod
    def _apply(result: object) -> None:
        """Apply the policy to a result's errors (idempotent: a result may pass through twice)."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = apply_error_policy(errors)  # type: ignore[attr-defined]
