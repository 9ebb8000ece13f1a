"""The hosted OAuth2 flow over HTTP: ``GET /api/oauth2/{provider}/authorize/`` and ``/oauth2/callback``.

``authorize`` (authenticated) runs the GraphQL ``startOAuth2Authorization`` and answers ``302`` to the
provider's consent page, with the same URL in the JSON body (``?redirect=false``: ``200`` and the body
alone, for a program that hands the URL to a browser). ``/oauth2/callback`` is where the provider sends
the browser back: no login (the state names the server), an HTML page saying how it went, or a
redirect to the flow's ``return_to`` with ``imap_server`` and ``oauth2=connected`` (or
``oauth2=error`` and ``message``) added. Both spend the rate limits like every other request.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from imap2api.enums import OAuth2Provider
from imap2api.oauth2.flow import CALLBACK_PATH, with_outcome
from imap2api.rest.deps import CurrentUser, execute
from imap2api.rest.errors import ApiError, not_found
from imap2api.rest.wire import JSONRoute
from imap2api.services import oauth2

router = APIRouter(prefix="/oauth2", tags=["oauth2"], route_class=JSONRoute)
callback_router = APIRouter(include_in_schema=False)

START = """mutation($provider: OAuth2Provider!, $server: ID!, $returnTo: String) {
  startOAuth2Authorization(provider: $provider, imapServer: $server, returnTo: $returnTo) {
    url expiresAt } }"""
PROVIDERS = {member.value: member.name for member in OAuth2Provider}


@router.get("/{provider}/authorize/", response_model=None, status_code=302)
async def authorize(
    request: Request,
    provider: str,
    user: CurrentUser,
    imap_server: str | None = None,
    return_to: str | None = None,
    redirect: str = "true",
) -> Response:
    """Start connecting ``imap_server`` with Google or Microsoft: a redirect to the consent page."""
    if provider not in PROVIDERS:
        raise not_found()
    if not imap_server:
        raise ApiError(400, {"imap_server": ["This field is required."]})
    variables = {"provider": PROVIDERS[provider], "server": imap_server, "returnTo": return_to}
    data = await execute(START, variables, user=user, request=request)
    started = data["startOAuth2Authorization"]
    body = {"authorization_url": started["url"], "expires_at": started["expiresAt"]}
    if redirect.lower() in ("false", "0", "no"):
        return JSONResponse(body)
    return JSONResponse(body, status_code=302, headers={"Location": started["url"]})


@callback_router.get(CALLBACK_PATH)
async def callback(state: str = "", code: str = "", error: str = "", error_description: str = "") -> Response:
    """Finish the flow: store the tokens, then a page (or the caller's return URL) saying how it went."""
    finished = await run_in_threadpool(
        oauth2.finish,
        state=state[:200],
        code=code[:4096],
        error=error[:200],
        error_description=error_description[:500],
    )
    if finished.return_to:
        outcome: dict[str, Any] = {"imap_server": finished.server_id or ""}
        outcome.update(
            {"oauth2": "connected"} if finished.ok else {"oauth2": "error", "message": finished.message}
        )
        return RedirectResponse(with_outcome(finished.return_to, outcome), status_code=303)
    title = "Account connected" if finished.ok else "Account not connected"
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title} · imap2api</title></head><body><main>"
        f'<h1>{title}</h1><p id="outcome">{html.escape(finished.message)}</p>'
        "<p>You can close this window.</p></main></body></html>"
    )
    return HTMLResponse(page, status_code=finished.status, headers={"Cache-Control": "no-store"})
