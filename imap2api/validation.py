"""Rules for IMAP server settings, shared by every interface (GraphQL, REST, admin)."""

from __future__ import annotations

from typing import Any

from imap2api.errors import ValidationFailed

SYNC_LIMIT_TYPES = ("all", "last_n", "days", "weeks", "months")
TEXT_FIELDS = {"name": 255, "host": 255, "username": 255}
REQUIRED_ON_CREATE = ("name", "host", "username", "password")
SERVER_DEFAULTS: dict[str, Any] = {
    "port": 993,
    "use_ssl": True,
    "sync_limit_type": "all",
    "sync_limit_value": None,
    "folders_to_sync": "",
    "exclude_trash": True,
}


def normalize_folders(value: str) -> str:
    """``" INBOX , Sent ,, "`` → ``"INBOX,Sent"``: trimmed names, empty ones dropped, order kept."""
    seen: dict[str, None] = {}
    for name in value.split(","):
        if name.strip():
            seen.setdefault(name.strip(), None)
    return ",".join(seen)


def validate_server(data: dict[str, Any], *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check and normalise server fields; ``current`` holds the stored values for a partial update.

    Returns the fields to write. Raises ValidationFailed with DRF-style messages.
    """
    errors: dict[str, list[str]] = {}
    clean = dict(data)
    if current is None:
        for name in REQUIRED_ON_CREATE:
            if clean.get(name) is None:
                errors.setdefault(name, []).append("This field is required.")
        for name, default in SERVER_DEFAULTS.items():
            if clean.get(name) is None and name != "sync_limit_value":
                clean[name] = default
    for name, limit in TEXT_FIELDS.items():
        value = clean.get(name)
        if value is None:
            continue
        clean[name] = value = value.strip()
        if not value:
            errors.setdefault(name, []).append("This field may not be blank.")
        elif len(value) > limit:
            errors.setdefault(name, []).append(f"Ensure this field has no more than {limit} characters.")
    if "password" in clean and clean["password"] is not None and clean["password"] == "":
        errors.setdefault("password", []).append("This field may not be blank.")
    for name in (*TEXT_FIELDS, "password", "folders_to_sync"):
        if isinstance(clean.get(name), str) and "\x00" in clean[name]:
            errors.setdefault(name, []).append("Null characters are not allowed.")
    for name in ("port", "use_ssl", "exclude_trash", "sync_limit_type", "folders_to_sync"):
        if name in clean and clean[name] is None:
            errors.setdefault(name, []).append("This field may not be null.")
    port = clean.get("port")
    if port is not None and not 1 <= port <= 65535:
        errors.setdefault("port", []).append(
            "Ensure this value is greater than or equal to 1."
            if port < 1
            else "Ensure this value is less than or equal to 65535."
        )
    if clean.get("folders_to_sync") is not None:
        clean["folders_to_sync"] = normalize_folders(clean["folders_to_sync"])
    _validate_limit(clean, current or {}, errors)
    if errors:
        raise ValidationFailed(errors)
    return clean


def _validate_limit(clean: dict[str, Any], current: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """``sync_limit_value`` must be a positive number for every limit type but ``all``."""
    limit_type = clean.get("sync_limit_type", current.get("sync_limit_type", "all"))
    if limit_type is not None and limit_type not in SYNC_LIMIT_TYPES:
        errors.setdefault("sync_limit_type", []).append(f'"{limit_type}" is not a valid choice.')
        return
    value = clean["sync_limit_value"] if "sync_limit_value" in clean else current.get("sync_limit_value")
    if limit_type == "all":
        if "sync_limit_type" in clean and "sync_limit_value" not in clean:
            clean["sync_limit_value"] = None
        return
    if value is None:
        errors.setdefault("sync_limit_value", []).append(
            f'This field is required when sync_limit_type is "{limit_type}".'
        )
    elif value < 1:
        errors.setdefault("sync_limit_value", []).append("Ensure this value is greater than or equal to 1.")
