"""The Content Security Policy of the admin pages: sqladmin's own files and its one inline script."""

from __future__ import annotations

from importlib.resources import files

from imap2api.security_headers import inline_script_hashes

# The only inline scripts sqladmin renders for imap2api's views (the rich-text editors, which load
# from CDNs, are not used): flash.html shows the toasts of "Sync queued" and the like.
INLINE_SCRIPT_TEMPLATES = ("flash.html",)


def template_script_hashes() -> list[str]:
    """Hashes of the inline scripts in sqladmin's templates (static text, rendered unchanged)."""
    templates = files("sqladmin") / "templates" / "sqladmin"
    return [
        digest
        for name in INLINE_SCRIPT_TEMPLATES
        for digest in inline_script_hashes((templates / name).read_text(encoding="utf-8"))
    ]


def admin_policy() -> str:
    """Only this server: sqladmin's scripts, styles and fonts under /admin/statics, its XHRs to /admin.

    Inline styles are allowed: the templates, Tabler and select2 use style attributes.
    """
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' " + " ".join(template_script_hashes()),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",  # Tabler's icons in form controls are data: SVGs
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
