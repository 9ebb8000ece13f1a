"""The admin interface at /admin (sqladmin), for users created with ``--admin``."""

from imap2api.admin.site import favicon, mount_admin

__all__ = ["favicon", "mount_admin"]
