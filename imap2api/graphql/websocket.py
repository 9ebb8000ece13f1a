"""The GraphQL websocket (graphql-transport-ws only): who is asking, and what each operation costs.

A socket is authenticated by the upgrade request's ``Authorization: Token …`` header or, since
browsers cannot set headers on a websocket, by ``connection_init``'s payload:
``{"Authorization": "Token …"}`` or ``{"token": "…"}``. A token that does not log in closes the
socket with 4403 at once. Every ``subscribe`` message (query, mutation or subscription) spends one
request of the same budget an HTTP request would spend: the user's once authenticated, the
client address's before. A throttled operation gets an ``error`` message with code ``THROTTLED``
and ``retryAfter`` seconds; the socket stays open. Queries and mutations are bounded by
``IMAP2API_REQUEST_TIMEOUT_SECONDS`` like HTTP requests; subscriptions live as long as the socket.
The legacy ``graphql-ws`` protocol is refused at connect (close code 4406).
"""

from __future__ import annotations

import json
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage, SubscribeMessage
from strawberry.types.unset import UnsetType

from imap2api.config import settings
from imap2api.graphql.context import Context, authenticate
from imap2api.nesting import TooDeeplyNested, check_json_depth
from imap2api.throttling import Throttle, Verdict
from imap2api.timeouts import RequestTimedOut, run_within

PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
MAX_TOKENS = 2000  # as the schema's MaxTokensLimiter


def _throttled(operation_id: str, verdict: Verdict) -> ErrorMessage:
    """The message an operation over budget gets, in DRF's words (as an HTTP 429's detail)."""
    error = GraphQLError(verdict.detail, extensions={"code": "THROTTLED", "retryAfter": verdict.wait})
    return {"id": operation_id, "type": "error", "payload": [error.formatted]}


def _is_subscription(query: str, operation_name: str | None) -> bool:
    """Whether the operation to run is a subscription (a document that does not parse is not)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except Exception:  # noqa: BLE001 - the schema reports what is wrong with it
        return False
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            operation_name is None or (definition.name and definition.name.value == operation_name)
        ):
            return definition.operation == OperationType.SUBSCRIPTION
    return False


class BudgetedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws where each operation spends the caller's request budget."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Spend one request before the operation starts; refuse it when the budget is spent."""
        if (
            settings.rate_limit_enabled
            and self.connection_acknowledged
            and message["id"] not in self.operations
        ):
            verdict = await self._spend()
            if not verdict.allowed:
                await self.send_message(_throttled(message["id"], verdict))
                return
        await super().handle_subscribe(message)

    async def _spend(self) -> Verdict:
        """Spend from the socket user's budget, or from its client address's."""
        websocket = self.context.websocket
        throttle: Throttle = websocket.app.state.throttle
        if self.context.user is not None:
            return await throttle.spend(*throttle.user_budget(self.context.user.id or 0))
        return await throttle.spend(*throttle.client_budget(websocket.scope))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Run it; a query or mutation past the request time bound ends with an error message."""
        if _is_subscription(operation.query, operation.operation_name):
            await super().run_operation(operation)
            return
        limit = settings.request_timeout_seconds
        if limit <= 0:
            await super().run_operation(operation)
            return
        try:
            await run_within(super().run_operation(operation), limit)
        except RequestTimedOut:
            error = GraphQLError(
                f"Request timed out: no answer within {limit:g} seconds.", extensions={"code": "TIMEOUT"}
            )
            await operation.send_initial_errors([error])


class WebSocketTransport:
    """Router mixin: graphql-transport-ws only, budgeted, authenticated at ``connection_init``."""

    graphql_transport_ws_handler_class: type[BaseGraphQLTransportWSHandler[Any, Any]] = (
        BudgetedTransportWSHandler
    )

    def decode_json(self, data: str | bytes) -> object:
        """A websocket message; one nested absurdly deep closes the socket (4400) like bad JSON."""
        try:
            check_json_depth(data)
        except TooDeeplyNested as exc:
            text = data if isinstance(data, str) else data.decode(errors="replace")
            raise json.JSONDecodeError(str(exc), text, 0) from None
        return json.loads(data)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Log the socket in from ``connection_init``'s payload when its upgrade carried no token."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        params = {str(key).lower(): value for key, value in params.items()}
        header = params.get("authorization") or (f"Token {params['token']}" if params.get("token") else None)
        if context.user is None and isinstance(header, str):
            context.user, context.auth_error = await authenticate(header)
            if context.user is None:
                raise ConnectionRejectionError()
        return UnsetType()  # the UNSET singleton (strawberry.UNSET itself is typed Any)
