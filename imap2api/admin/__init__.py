"""The admin interface at /admin (sqladmin), for users created with ``--admin``."""

from imap2api.admin.site import mount_admin

__all__ = ["mount_admin"]
