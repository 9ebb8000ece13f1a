"""Assemble the admin interface and mount it at /admin."""

from __future__ import annotations

from fastapi import FastAPI
from sqladmin import Admin
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session
from starlette.middleware import Middleware

from imap2api.admin.auth import AdminAuth
from imap2api.admin.mail import EmailAdmin
from imap2api.admin.same_origin import SameOriginMiddleware
from imap2api.admin.servers import ImapServerAdmin, SyncRunAdmin
from imap2api.admin.users import ApiTokenAdmin, UserAdmin
from imap2api.admin.webhooks import WebhookAdmin, WebhookDeliveryAdmin
from imap2api.db import get_engine

VIEWS = (UserAdmin, ApiTokenAdmin, ImapServerAdmin, SyncRunAdmin, WebhookAdmin, WebhookDeliveryAdmin,
         EmailAdmin)


def mount_admin(app: FastAPI) -> Admin:
    """Mount sqladmin at /admin with imap2api's login, CSRF guard and views."""
    admin = Admin(
        app,
        session_maker=sessionmaker(bind=get_engine(), class_=Session, expire_on_commit=False),
        base_url="/admin",
        title="imap2api admin",
        authentication_backend=AdminAuth(),
        middlewares=[Middleware(SameOriginMiddleware)],
    )
    for view in VIEWS:
        admin.add_view(view)
    return admin
