"""The change feed: what changed in the caller's mirror since a cursor (``services.changes``)."""

from __future__ import annotations

import strawberry

from imap2api.graphql.context import Context
from imap2api.services import changes as feed_service

Info = strawberry.Info[Context, None]


@strawberry.type(name="Changes", description="Emails created, updated and destroyed since a cursor.")
class ChangesType:
    """One page of the change feed."""

    cursor: str = strawberry.field(description="Where the next read starts (pass it as since).")
    has_more: bool = strawberry.field(description="More changes wait: read again from cursor now.")
    created: list[strawberry.ID] = strawberry.field(
        description="Emails created since (in their latest state)."
    )
    updated: list[strawberry.ID] = strawberry.field(
        description="Emails changed since: flags, folder (a move), thread; each listed once."
    )
    destroyed: list[strawberry.ID] = strawberry.field(
        description="Emails the sync deleted since (expunged, or their folder recreated or gone)."
    )


@strawberry.type
class ChangesQuery:
    """Reads of the change feed."""

    @strawberry.field(
        description="The caller's emails created, updated and destroyed since the cursor `since` "
        "(omitted: the current cursor and empty lists, to start from now); at most `limit` emails "
        f"(1 to {feed_service.MAX_LIMIT}, default {feed_service.DEFAULT_LIMIT}). A cursor whose history "
        "is no longer kept (IMAP2API_CHANGES_RETENTION_DAYS) fails with CURSOR_EXPIRED: read all again."
    )
    async def changes(
        self, info: Info, since: str | None = None, limit: int = feed_service.DEFAULT_LIMIT
    ) -> ChangesType:
        """One page of changes."""
        feed = await info.context.run(feed_service.changes, since, limit)
        return ChangesType(
            cursor=feed.cursor,
            has_more=feed.has_more,
            created=[strawberry.ID(str(email_id)) for email_id in feed.created],
            updated=[strawberry.ID(str(email_id)) for email_id in feed.updated],
            destroyed=[strawberry.ID(str(email_id)) for email_id in feed.destroyed],
        )
