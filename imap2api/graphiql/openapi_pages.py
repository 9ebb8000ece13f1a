"""The REST reference page ``/docs`` (Swagger UI), with its assets served from imap2api itself.

FastAPI's own page loads Swagger UI from a CDN: blank without internet access. This one loads the
pinned copy that ``fetch_assets`` put in ``static/``. FastAPI's ``/redoc`` is not offered: ReDoc
fetches its badge from its CDN whatever the options (and 3.x reports telemetry); ``/docs`` and
``/openapi.json`` cover the same ground.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from imap2api.graphiql import STATIC_PATH, missing_assets, missing_page
from imap2api.graphiql.fetch_assets import REFERENCE, SWAGGER_CSS, SWAGGER_ICON, SWAGGER_JS
from imap2api.security_headers import inline_script_hashes


def _policy(page: str) -> str:
    """Only this server, and only the page's own inline script (the one that starts Swagger UI)."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' " + " ".join(inline_script_hashes(page)),
            "style-src 'self' 'unsafe-inline'",  # Swagger UI sets inline styles
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def mount_openapi_pages(app: FastAPI) -> None:
    """Serve ``/docs`` (create the app with ``docs_url=None, redoc_url=None``)."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        absent = missing_assets(REFERENCE)
        if absent:
            return missing_page(
                "Swagger UI",
                "The REST reference serves Swagger UI",
                absent,
                "The description itself is at /openapi.json.",
            )
        root = request.scope.get("root_path", "").rstrip("/")
        static = root + STATIC_PATH
        page = get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} · REST API",
            swagger_js_url=f"{static}/{SWAGGER_JS.filename}",
            swagger_css_url=f"{static}/{SWAGGER_CSS.filename}",
            swagger_favicon_url=f"{static}/{SWAGGER_ICON.filename}",
        )
        page.headers["Content-Security-Policy"] = _policy(bytes(page.body).decode())
        return page
