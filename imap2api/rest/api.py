"""The router mounted under /api/ and /api/v1/."""

from __future__ import annotations

from fastapi import APIRouter

from imap2api.rest import changes, emails, imap_servers, oauth2, sending, sync_runs, tokens, webhooks
from imap2api.rest import content as content  # adds the download routes to emails.router
from imap2api.rest import email_actions as email_actions  # adds the write routes to emails.router
from imap2api.rest.methods import add_options_and_head

api_router = APIRouter()
for module in (imap_servers, sync_runs, emails, webhooks, tokens, changes, sending, oauth2):
    add_options_and_head(module.router)
    api_router.include_router(module.router)
