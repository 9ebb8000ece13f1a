"""The router mounted under /api/ and /api/v1/."""

from __future__ import annotations

from fastapi import APIRouter

from imap2api.rest import emails, imap_servers, tokens, webhooks

api_router = APIRouter()
api_router.include_router(imap_servers.router)
api_router.include_router(emails.router)
api_router.include_router(webhooks.router)
api_router.include_router(tokens.router)
