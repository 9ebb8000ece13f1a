"""Assemble the admin interface and mount it at /admin."""

from __future__ import annotations

from fastapi import FastAPI
from sqladmin import Admin
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session
from starlette.middleware import Middleware

from imap2api.admin.auth import AdminAuth
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


def mount_admin(app: FastAPI) -> Admin:
    """Mount sqladmin at /admin with imap2api's login, CSRF guard, page policy and views."""
    admin = Admin(
        app,
        session_maker=sessionmaker(bind=get_engine(), class_=Session, expire_on_commit=False),
        base_url="/admin",
        title="imap2api admin",
        authentication_backend=AdminAuth(),
        # The app-wide headers keep a policy already set: the admin's is stricter than the default.
        middlewares=[
            Middleware(SecurityHeadersMiddleware, policy=admin_policy()),
            Middleware(SameOriginMiddleware),
        ],
    )
    admin.admin.router.routes = [
        route for route in admin.admin.router.routes if getattr(route, "name", None) not in FILE_ROUTES
    ]
    for view in VIEWS:
        admin.add_view(view)
    return admin
