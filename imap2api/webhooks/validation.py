"""Rules for webhook settings, shared by every interface; messages and field names as DRF's."""

from __future__ import annotations

from typing import Any

import httpx

from imap2api.enums import DEFAULT_EVENT_TYPES, TEST_EVENT, EventType
from imap2api.errors import ValidationFailed
from imap2api.fields import max_length
from imap2api.models import WebhookSettings

EVENT_TYPES = tuple(EventType)  # the name the admin imports; TEST_EVENT likewise
MAX_URL_LENGTH = max_length(WebhookSettings, "url") or 2000
__all__ = ["EVENT_TYPES", "MAX_URL_LENGTH", "TEST_EVENT", "normalize_events", "validate_webhook"]


def _url_error(url: Any) -> str | None:
    """Why ``url`` is not a usable webhook URL (None when it is)."""
    if not isinstance(url, str):
        return "Not a valid string."
    if not url:
        return "This field may not be blank."
    if len(url) > MAX_URL_LENGTH:
        return f"Ensure this field has no more than {MAX_URL_LENGTH} characters."
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "Enter a valid URL."
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return "Enter a valid URL."
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        return "Enter a valid URL."
    try:
        _ = parsed.port
    except ValueError:
        return "Enter a valid URL."
    return None


def normalize_events(value: Any) -> tuple[list[str], list[str]]:
    """(the chosen event types in canonical order, error messages)."""
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        return [], [f'Expected a list of items but got type "{type(value).__name__}".']
    errors = [f'"{item}" is not a valid choice.' for item in value if item not in EVENT_TYPES]
    if not value and not errors:
        errors.append("This selection may not be empty.")
    return [name.value for name in EventType if name in value], errors


def validate_webhook(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Check and normalise webhook fields (``url``, ``events``, ``imap_server``, ``is_active``).

    On create, ``url`` is required and ``events`` defaults to DEFAULT_EVENT_TYPES; on update only the
    given fields change. ``imap_server`` ownership is checked by the caller, which holds a session.
    Raises ValidationFailed with DRF-style messages.
    """
    errors: dict[str, list[str]] = {}
    clean = dict(data)
    if creating and clean.get("url") is None and "url" not in clean:
        errors["url"] = ["This field is required."]
    for name in ("url", "events", "is_active"):
        if name in clean and clean[name] is None:
            errors[name] = ["This field may not be null."]
    if clean.get("url") is not None:
        if isinstance(clean["url"], str):
            clean["url"] = clean["url"].strip()
        problem = _url_error(clean["url"])
        if problem:
            errors["url"] = [problem]
    if clean.get("events") is not None:
        clean["events"], problems = normalize_events(clean["events"])
        if problems:
            errors["events"] = problems
    elif creating and "events" not in clean:
        clean["events"] = [name.value for name in DEFAULT_EVENT_TYPES]
    if creating and clean.get("is_active") is None and "is_active" not in errors:
        clean["is_active"] = True
    if errors:
        raise ValidationFailed(errors)
    return clean
