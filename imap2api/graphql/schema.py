"""The schema: every Query and Mutation mixin combined, with limits and the error policy."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from imap2api.graphql.budget import BodyBudgetExtension
from imap2api.graphql.cost import QueryCostLimiter
from imap2api.graphql.errors import ErrorPolicy
from imap2api.graphql.resolvers.actions import EmailActionMutation
from imap2api.graphql.resolvers.auth import AuthMutation, AuthQuery
from imap2api.graphql.resolvers.changes import ChangesQuery
from imap2api.graphql.resolvers.emails import EmailQuery
from imap2api.graphql.resolvers.imap_servers import ImapServerMutation, ImapServerQuery
from imap2api.graphql.resolvers.oauth2 import OAuth2Mutation
from imap2api.graphql.resolvers.sending import SendingMutation, SendingQuery
from imap2api.graphql.resolvers.subscriptions import Subscription
from imap2api.graphql.resolvers.sync import SyncMutation, SyncQuery
from imap2api.graphql.resolvers.webhooks import WebhookMutation, WebhookQuery


@strawberry.type
class Query(AuthQuery, ImapServerQuery, EmailQuery, SyncQuery, WebhookQuery, ChangesQuery, SendingQuery):
    """Every read."""


@strawberry.type
class Mutation(
    AuthMutation,
    ImapServerMutation,
    SyncMutation,
    WebhookMutation,
    EmailActionMutation,
    SendingMutation,
    OAuth2Mutation,
):
    """Every write."""


class Imap2ApiSchema(strawberry.Schema):
    """The schema, logging only what ``ErrorPolicy`` masks (expected failures are the caller's)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Leave logging to ``ErrorPolicy``, which knows expected from unexpected."""


schema = Imap2ApiSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[
        ErrorPolicy,
        lambda: QueryDepthLimiter(max_depth=10),
        lambda: MaxAliasesLimiter(max_alias_count=30),
        lambda: MaxTokensLimiter(max_token_count=2000),
        # REST routes send the same few documents over and over: parse and validate each once.
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        # After validation (a valid document, whatever the variables): the estimate, then the budget.
        QueryCostLimiter,
        BodyBudgetExtension,
    ],
)
