"""``GET /``: where everything is, and how to get the first user and token (HTML for browsers, else JSON)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from imap2api import __version__
from imap2api.security_headers import script_hash

router = APIRouter()

# A checkout installs the program into .venv (make install); an installed package puts it on PATH.
CREATE_USER = "imap2api createuser NAME --admin"
CREATE_USER_NOTE = "in a checkout after `make install` the program is .venv/bin/imap2api"
TOKEN_PATH = "/api-token-auth/"

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em;line-height:1.5}"
    "code,pre{background:#f3f3f3;border-radius:3px}code{padding:0 .25em}pre{padding:.6em;overflow-x:auto}"
    "dt{font-weight:600;margin-top:.6em}dd{margin-left:1.2em}"
)
# No script at all; the one inline style is allowed by its hash (script_hash hashes any inline source).
_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"style-src {script_hash(_STYLE)}",
        "img-src data:",  # the empty favicon, so browsers do not ask for /favicon.ico
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


def links(root: str = "") -> dict[str, str]:
    """The pages and endpoints to start from, under ``root`` (the ASGI root_path behind a proxy)."""
    return {
        "graphql": f"{root}/graphql",
        "docs": f"{root}/docs",
        "openapi": f"{root}/openapi.json",
        "admin": f"{root}/admin",
        "token": f"{root}{TOKEN_PATH}",
        "health": f"{root}/healthz",
    }


def _quality(accept: str, wanted: str) -> float:
    """The q-value ``accept`` gives ``wanted`` (an exact type beats ``type/*``, which beats ``*/*``)."""
    kind = wanted.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        rank = {wanted: 2, f"{kind}/*": 1, "*/*": 0}.get(media)
        if rank is None or rank < best[0]:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best = (rank, quality)
    return best[1]


def wants_html(accept: str | None) -> bool:
    """Whether the client prefers HTML to JSON; a tie (``*/*``, no header) is JSON, for curl and programs."""
    if not accept:
        return False
    return _quality(accept, "text/html") > _quality(accept, "application/json")


def _document(root: str) -> dict[str, Any]:
    """The JSON answer."""
    return {
        "name": "imap2api",
        "version": __version__,
        "links": links(root),
        # A prefix, not a page: /api/ itself answers 404 (the operations are listed at /docs).
        "rest_api": {"base": f"{root}/api/", "also_under": f"{root}/api/v1/"},
        "getting_started": {
            "create_user": CREATE_USER,
            "create_user_note": CREATE_USER_NOTE,
            "obtain_token": f'POST {root}{TOKEN_PATH} {{"username": "NAME", "password": "..."}}',
            "authenticate": "Authorization: Token <key>",
        },
    }


def _page(root: str) -> str:
    """The HTML answer."""
    to = {name: html.escape(url, quote=True) for name, url in links(root).items()}
    token, rest = to["token"], html.escape(root, quote=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>imap2api {html.escape(__version__)}</title><link rel="icon" href="data:,">
<style>{_STYLE}</style></head>
<body>
<h1>imap2api <small>{html.escape(__version__)}</small></h1>
<p>IMAP mailboxes mirrored into SQL, served over GraphQL and REST.</p>
<dl>
<dt><a href="{to["graphql"]}">GraphQL explorer</a> <code>{to["graphql"]}</code></dt>
<dd>GraphiQL: paste an API token into its "API token" field, then run queries.</dd>
<dt><a href="{to["docs"]}">REST reference</a> <code>{to["docs"]}</code></dt>
<dd>Swagger UI for <code>{rest}/api/</code> (also served under <code>{rest}/api/v1/</code>):
"Authorize" with <code>Token &lt;key&gt;</code>, then "Try it out".
The description is <a href="{to["openapi"]}">{to["openapi"]}</a>.</dd>
<dt><a href="{to["admin"]}">Admin</a> <code>{to["admin"]}</code></dt>
<dd>For admin users: users, tokens, IMAP servers, syncs, webhooks.</dd>
</dl>
<h2>The first user</h2>
<p>Users are created on the server's command line (there is no sign-up over HTTP):</p>
<pre>{html.escape(CREATE_USER)}</pre>
<p>({html.escape(CREATE_USER_NOTE)}; leave out <code>--admin</code> for a user without the admin
interface). Then exchange the username and password for an API token:</p>
<pre>curl -X POST {token} -H 'Content-Type: application/json' \\
  -d '{{"username": "NAME", "password": "..."}}'</pre>
<p>and send it with every request: <code>Authorization: Token &lt;key&gt;</code>.</p>
</body></html>
"""


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def landing(request: Request) -> Response:
    """The landing page: HTML when the client prefers it, else JSON."""
    root = request.scope.get("root_path", "").rstrip("/")
    # One URL, two representations: caches must keep them apart.
    headers = {"Vary": "Accept"}
    if wants_html(request.headers.get("accept")):
        headers["Content-Security-Policy"] = _POLICY
        return HTMLResponse(_page(root), headers=headers)
    return JSONResponse(_document(root), headers=headers)
