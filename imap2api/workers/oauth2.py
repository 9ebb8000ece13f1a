"""Keeping idle OAuth2 accounts usable: their refresh tokens are used before providers expire them.

Google drops a refresh token unused for six months, Microsoft one unused for 90 days; a server that
syncs refreshes its token every hour anyway, but an inactive one (or one whose syncs fail elsewhere)
would lose it. Hourly, the scheduler queues ``refresh_oauth2_token`` for every oauth2 server whose
token was last refreshed more than ``IMAP2API_OAUTH2_KEEPALIVE_DAYS`` ago, and prunes hosted flows
that never came back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from imap2api.config import settings
from imap2api.crud import oauth2 as crud_oauth2
from imap2api.db import session_scope
from imap2api.models import utcnow
from imap2api.oauth2 import tokens
from imap2api.services import jobs

log = logging.getLogger("imap2api.oauth2")


def refresh_oauth2_token(server_id: int, refreshed_before: str) -> None:
    """Refresh the server's token unless another refresh happened since (a failure is stored, not raised)."""
    try:
        tokens.access_token(server_id, refreshed_before=datetime.fromisoformat(refreshed_before))
    except tokens.OAuth2Failure as exc:
        log.warning("keep-alive refresh of server %s failed (%s): %s", server_id, exc.code, exc.message)


def keepalive_tick() -> list[int]:
    """Queue the keep-alive refresh of every idle oauth2 server; drop expired flows. The servers' ids."""
    cutoff = utcnow() - timedelta(days=settings.oauth2_keepalive_days)
    with session_scope() as session:
        due = crud_oauth2.keepalive_due(session, refreshed_before=cutoff)
        crud_oauth2.prune_states(session)
    for server_id in due:
        jobs.send(jobs.refresh_job(server_id, cutoff.isoformat()))
    if due:
        log.info("queued the keep-alive refresh of %d OAuth2 tokens", len(due))
    return due
