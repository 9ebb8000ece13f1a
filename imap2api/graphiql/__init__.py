"""The GraphiQL explorer at GET /graphql, served with its assets from imap2api itself (no CDN).

Strawberry's own page loads React and GraphiQL from unpkg.com, a blank page without internet
access. Ours loads the same files from ``/static/graphiql/`` (fetched from the npm registry at
install time by :mod:`imap2api.graphiql.fetch_assets`, never committed), under a Content Security
Policy that allows nothing but this server, and adds an "API token" field whose value goes into
the ``Authorization: Token …`` header of every request the explorer sends.
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cross_web import HTTPException
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from strawberry.fastapi import GraphQLRouter

from imap2api.graphql.websocket import WebSocketTransport
from imap2api.nesting import TooDeeplyNested, check_graphql_depth, check_json_depth

if TYPE_CHECKING:
    from imap2api.graphiql import fetch_assets


# Under /static, which the request budgets of imap2api.throttling leave alone.
STATIC_PATH = "/static/graphiql"
FETCH_COMMAND = "make install  (or: python -m imap2api.graphiql.fetch_assets)"
_TEMPLATE = Path(__file__).with_name("page.html")
# Where fetch_assets puts them (not imported from it, so `python -m` runs it without a warning).
STATIC_DIR = Path(__file__).resolve().parent / "static"


def missing_assets(assets: tuple[fetch_assets.Asset, ...] | None = None) -> list[str]:
    """The asset files (of ``assets``, default all) that are not there (not fetched yet)."""
    from imap2api.graphiql.fetch_assets import ASSETS

    return [asset.filename for asset in assets or ASSETS if not (STATIC_DIR / asset.filename).is_file()]


def missing_page(title: str, what: str, absent: list[str], note: str) -> HTMLResponse:
    """A page saying which fetched assets are missing and how to fetch them."""
    body = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>imap2api · {html.escape(title)}"
        "</title></head><body style='font-family: system-ui, sans-serif; padding: 2em'>"
        f"<h1>{html.escape(title)} assets are not installed</h1>"
        f"<p>{html.escape(what)} from this server, and these files are "
        "missing from the package's <code>imap2api/graphiql/static/</code>: "
        f"<code>{html.escape(', '.join(absent))}</code>.</p>"
        f"<p>Fetch them from the npm registry, then reload: <code>{html.escape(FETCH_COMMAND)}</code></p>"
        f"<p>{html.escape(note)}</p></body></html>"
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def _policy(nonce: str) -> str:
    """Only this server: no CDN, no third-party connection, whatever a description or asset asks."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",  # React and CodeMirror set inline styles
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",  # the GraphQL endpoint, over HTTP and websockets
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        )
    )


def _tag(asset: fetch_assets.Asset, base: str) -> str:
    url = html.escape(f"{base}/{asset.filename}")
    if asset.filename.endswith(".css"):
        return f'    <link rel="stylesheet" href="{url}" integrity="{asset.sri}" />'
    return f'    <script src="{url}" integrity="{asset.sri}"></script>'


def explorer_page(root_path: str = "") -> HTMLResponse:
    """The explorer page; when the assets were never fetched, a page that says how to fetch them."""
    from imap2api.graphiql.fetch_assets import SCRIPTS, STYLES

    absent = missing_assets(STYLES + SCRIPTS)
    if absent:
        return missing_page(
            "GraphiQL",
            "The GraphQL explorer serves React and GraphiQL",
            absent,
            "The GraphQL API itself works: POST queries to this URL.",
        )

    nonce = secrets.token_urlsafe(16)
    base = root_path.rstrip("/") + STATIC_PATH
    page = (
        _TEMPLATE.read_text(encoding="utf-8")
        .replace("{{styles}}", "\n".join(_tag(asset, base) for asset in STYLES))
        .replace("{{scripts}}", "\n".join(_tag(asset, base) for asset in SCRIPTS))
        .replace("{{fetch_command}}", html.escape(FETCH_COMMAND))
        .replace("{{nonce}}", nonce)
    )
    headers = {"Content-Security-Policy": _policy(nonce), "Cache-Control": "no-store"}
    return HTMLResponse(page, headers=headers)


class _Assets(StaticFiles):
    async def check_config(self) -> None:
        """A missing directory means "not fetched yet": answer 404s instead of failing."""


def mount_assets(app: FastAPI) -> None:
    """Serve the fetched assets at ``/static/graphiql/``."""
    app.mount(STATIC_PATH, _Assets(directory=STATIC_DIR, check_dir=False), name="graphiql-assets")


class ExplorerGraphQLRouter(WebSocketTransport, GraphQLRouter[Any, Any]):
    """Strawberry's router with our explorer page instead of its CDN-loading one, and our websocket."""

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return explorer_page(request.scope.get("root_path", ""))

    def parse_json(self, data: str | bytes) -> Any:
        """A request's JSON (its body, GET ``variables`` or ``extensions``); absurd nesting is a 400."""
        try:
            check_json_depth(data)
        except TooDeeplyNested as exc:
            raise HTTPException(400, f"Unable to parse request body as JSON: {exc}.") from None
        return super().parse_json(data)

    async def parse_http_body(self, request: Any) -> Any:
        """The request's operations; a document nested deeper than any real query is a 400."""
        data = await super().parse_http_body(request)
        for operation in data if isinstance(data, list) else [data]:
            if isinstance(operation.query, str):
                try:
                    check_graphql_depth(operation.query)
                except TooDeeplyNested as exc:
                    raise HTTPException(400, f"Unable to parse the GraphQL document: {exc}.") from None
        return data
