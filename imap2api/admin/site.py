"""Assemble the admin interface and mount it at /admin."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from sqladmin import Admin
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from imap2api.admin.auth import AdminAuth
from imap2api.admin.common import EXPECTED_FAILURE_LOG
from imap2api.admin.mail import EmailAdmin
from imap2api.admin.outbox import OutboxAdmin
from imap2api.admin.page_policy import admin_policy
from imap2api.admin.same_origin import SameOriginMiddleware
from imap2api.admin.servers import ImapServerAdmin, SyncRunAdmin
from imap2api.admin.users import ApiTokenAdmin, UserAdmin
from imap2api.admin.webhooks import WebhookAdmin, WebhookDeliveryAdmin
from imap2api.db import get_engine
from imap2api.security_headers import SecurityHeadersMiddleware

# sqladmin serves, to any admin, the file a text column's value names under the working directory
# (a user called "data/imap2api.sqlite3" gave out the database): nothing here is a file to serve.
FILE_ROUTES = frozenset({"file_download", "file_preview"})
# sqladmin's templates, some overridden (sqladmin/base.html) and some extended (imap2api/list.html).
# Always this package's own: sqladmin's default is "templates" under the working directory.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
# What /admin/assets/<name> serves: these files and no other (a name, never a path).
ASSETS = {
    "admin.css": "text/css",
    "refresh.js": "text/javascript",
    "server-test.js": "text/javascript",
    "favicon.ico": "image/x-icon",
}
ASSET_CACHE = "public, max-age=3600"

VIEWS = (
    UserAdmin,
    ApiTokenAdmin,
    ImapServerAdmin,
    SyncRunAdmin,
    WebhookAdmin,
    WebhookDeliveryAdmin,
    EmailAdmin,
    OutboxAdmin,
)


async def asset(request: Request) -> Response:
    """One of the admin's own files (its style, the list refresher, the icon); public, like sqladmin's."""
    name = request.path_params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:
        return PlainTextResponse("Not found.", status_code=404)
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": ASSET_CACHE})


async def favicon(request: Request) -> Response:
    """The icon, for the app's ``/favicon.ico`` (browsers ask for it on every page, API or not)."""
    return FileResponse(
        STATIC_DIR / "favicon.ico", media_type=ASSETS["favicon.ico"], headers={"Cache-Control": ASSET_CACHE}
    )


def mount_admin(app: FastAPI) -> Admin:
    """Mount sqladmin at /admin with imap2api's login, CSRF guard, page policy and views."""
    admin = Admin(
        app,
        session_maker=sessionmaker(bind=get_engine(), class_=Session, expire_on_commit=False),
        base_url="/admin",
        title="imap2api admin",
        templates_dir=str(TEMPLATES_DIR),
        authentication_backend=AdminAuth(),
        # The app-wide headers keep a policy already set: the admin's is stricter than the default.
        middlewares=[
            Middleware(SecurityHeadersMiddleware, policy=admin_policy()),
            Middleware(SameOriginMiddleware),
        ],
    )
    admin.admin.router.routes = [
        Route("/assets/{name}", asset, name="asset"),
        *(route for route in admin.admin.router.routes if getattr(route, "name", None) not in FILE_ROUTES),
    ]
    # What the admin does that the API charges for (a connection test) spends the same budgets.
    admin.admin.state.throttle = getattr(app.state, "throttle", None)
    # A refused form is logged by sqladmin with logger.exception: common.ExpectedFailureLog shortens it.
    logging.getLogger("sqladmin.application").addFilter(EXPECTED_FAILURE_LOG)
    for view in VIEWS:
        admin.add_view(view)
    return admin
