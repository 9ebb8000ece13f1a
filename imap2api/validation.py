"""Rules for IMAP server settings, shared by every interface (GraphQL, REST, admin)."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from imap2api.enums import AuthType, SmtpSecurity, SyncLimitType, TlsMode
from imap2api.errors import ValidationFailed
from imap2api.fields import api_fields, max_length
from imap2api.hostnames import InvalidHost, canonical_host
from imap2api.models import ImapServerCreate
from imap2api.oauth2 import rules as oauth2_rules
from imap2api.sending.presets import fill_smtp

# The names admin and sync import; the sets are the enums.
SYNC_LIMIT_TYPES = tuple(SyncLimitType)
TLS_MODES = tuple(TlsMode)
SMTP_SECURITIES = tuple(SmtpSecurity)

# Read off the model (models.ImapServerSettings), so that a new field is checked without a change here.
_FIELDS = api_fields(ImapServerCreate, first=())
# Plain text with a bound: trimmed, never blank, at most that long.
TEXT_FIELDS = {
    f.name: bound for f in _FIELDS if f.base is str and (bound := max_length(ImapServerCreate, f.name))
}
REQUIRED_ON_CREATE = tuple(f.name for f in _FIELDS if f.required)
# Bounded text that may be blank (it has a blank default: smtp_host "" is sending off); the rest may not.
BLANK_ALLOWED = frozenset(name for name in TEXT_FIELDS if name not in REQUIRED_ON_CREATE)
PORT_FIELDS = ("port", "smtp_port")
# Left out on create, a port follows the TLS mode: (the mode's field, its implicit-TLS port, the other).
DEFAULT_PORTS = {"port": ("tls_mode", 993, 143), "smtp_port": ("smtp_security", 465, 587)}
MIN_SYNC_INTERVAL = 60  # seconds; more often is a poll push does better (imap2api.watch)
# use_ssl and tls_mode have defaults too, but decide each other (_resolve_tls).
SETTLED_TOGETHER = ("use_ssl", "tls_mode")
SERVER_DEFAULTS: dict[str, Any] = {
    f.name: f.default.value if isinstance(f.default, Enum) else f.default
    for f in _FIELDS
    if not f.required and f.name not in SETTLED_TOGETHER
}
# A default but no null: null would reach a NOT NULL column.
NOT_NULL = tuple(f.name for f in _FIELDS if not f.required and not f.nullable)
# Where the password is sent, and how it is protected: changing any of these needs the password again.
DESTINATION_FIELDS = ("host", "port", "use_ssl", "tls_mode", "tls_verify", "tls_ca_cert")
# C0, DEL and C1: a CR or LF in a credential would end the IMAP command and start another one.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PASSWORD_AGAIN = (
    "Enter the IMAP password again: changing host, port, use_ssl, tls_mode, tls_verify or tls_ca_cert "
    "needs it, so that a stored password is never sent to a server it was not given for."
)
# Where the SMTP login goes: the same rule, for the password SMTP uses (its own, or the IMAP one).
SMTP_DESTINATION_FIELDS = (
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_auth",
    "tls_verify",
    "tls_ca_cert",
)
SMTP_PASSWORD_AGAIN = (
    "Enter the SMTP password again: changing smtp_host, smtp_port, smtp_security, smtp_auth, tls_verify "
    "or tls_ca_cert needs it, so that a stored password is never sent to a server it was not given for."
)
IMAP_PASSWORD_FOR_SMTP = (
    "Enter the IMAP password again: SMTP logs in with it, and changing smtp_host, smtp_port, "
    "smtp_security, smtp_auth, tls_verify or tls_ca_cert (or dropping the SMTP password) needs it."
)
# tls_ca_cert: a server's own certificate or a private CA's, a few kB each; never a whole public bundle.
MAX_CA_CERT_CHARS = 100_000
NOT_PEM = (
    "Enter one or more certificates in PEM format (-----BEGIN CERTIFICATE----- ... "
    "-----END CERTIFICATE-----)."
)
A_PRIVATE_KEY = "Enter the certificate alone: this contains a private key, which belongs on the server only."
# An addr-spec, loosely: the SMTP server has the last word; this keeps out lists, names and brackets.
ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\".]+$")


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
    given = {name for name, value in data.items() if value is not None}
    oauth2_rules.fill_host_preset(clean, current)
    oauth2 = oauth2_rules.resolved_auth_type(clean, current) == AuthType.OAUTH2
    for name in REQUIRED_ON_CREATE:
        if name == "password" and oauth2 and clean.get(name) is None:
            continue  # an OAuth2 account logs in with tokens
        # Absent on create: required; null at any time: refused here, or it reaches a NOT NULL column.
        if clean.get(name) is None and (name in clean or current is None):
            errors.setdefault(name, []).append(
                "This field may not be null." if name in clean else "This field is required."
            )
    if current is None:
        for name, default in SERVER_DEFAULTS.items():
            if clean.get(name) is None and name in NOT_NULL and name not in DEFAULT_PORTS:
                clean[name] = default
        for name in (*SETTLED_TOGETHER, *DEFAULT_PORTS):
            if name in clean and clean[name] is None:
                del clean[name]  # as for the other defaults: null on create means "the default"
    for name, limit in TEXT_FIELDS.items():
        value = clean.get(name)
        if value is None:
            continue
        clean[name] = value = value.strip()
        if not value and name not in BLANK_ALLOWED:
            errors.setdefault(name, []).append("This field may not be blank.")
        elif len(value) > limit:
            errors.setdefault(name, []).append(f"Ensure this field has no more than {limit} characters.")
    if "password" in clean and clean["password"] is not None and clean["password"] == "":
        errors.setdefault("password", []).append("This field may not be blank.")
    _reject_control_characters(clean, errors)
    for name in ("host", "smtp_host"):
        if clean.get(name) and name not in errors:
            try:
                clean[name] = canonical_host(clean[name])
            except InvalidHost as exc:
                example = "smtp.example.com" if name == "smtp_host" else "imap.example.com"
                errors[name] = [str(exc).replace("imap.example.com", example)]
    _fill_smtp_preset(clean, current, given, errors)
    for name in NOT_NULL:
        if name in clean and clean[name] is None:
            errors.setdefault(name, []).append("This field may not be null.")
    for name in PORT_FIELDS:
        port = clean.get(name)
        if port is not None and not 1 <= port <= 65535:
            errors.setdefault(name, []).append(
                "Ensure this value is greater than or equal to 1."
                if port < 1
                else "Ensure this value is less than or equal to 65535."
            )
    interval = clean.get("sync_interval_seconds")
    if interval is not None and interval < MIN_SYNC_INTERVAL:
        errors.setdefault("sync_interval_seconds", []).append(
            f"Ensure this value is greater than or equal to {MIN_SYNC_INTERVAL}."
        )
    if clean.get("smtp_security") is not None and clean["smtp_security"] not in SMTP_SECURITIES:
        errors.setdefault("smtp_security", []).append(f'"{clean["smtp_security"]}" is not a valid choice.')
    address = clean.get("email_address")
    if address and "email_address" not in errors and not ADDRESS.match(address):
        errors.setdefault("email_address", []).append("Enter a valid email address.")
    if clean.get("folders_to_sync") is not None:
        clean["folders_to_sync"] = normalize_folders(clean["folders_to_sync"])
    _validate_ca_cert(clean, errors)
    _validate_limit(clean, current or {}, errors)
    _resolve_tls(clean, current or {}, errors, creating=current is None)
    if current is None:
        _default_ports(clean)
    oauth2_rules.check(clean, current, errors)
    if current is not None and not oauth2:
        _require_password_for_new_destination(clean, current, errors)
        if current.get("auth_type") == AuthType.OAUTH2:
            _require_password_when_switching(clean, current, errors)
    if current is not None and not _smtp_uses_oauth2(clean, current, oauth2=oauth2):
        _require_password_for_new_smtp_destination(clean, current, errors)
    if errors:
        raise ValidationFailed(errors)
    return clean


def _validate_ca_cert(clean: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """``tls_ca_cert``: blank, or PEM certificates (stored re-encoded: comments and other blocks dropped)."""
    value = clean.get("tls_ca_cert")
    if not isinstance(value, str):
        return  # null: refused with the other not-null fields
    value = value.strip()
    if not value:
        clean["tls_ca_cert"] = ""
        return
    if len(value) > MAX_CA_CERT_CHARS:
        errors["tls_ca_cert"] = [f"Ensure this field has no more than {MAX_CA_CERT_CHARS} characters."]
        return
    if "PRIVATE KEY-----" in value:
        errors["tls_ca_cert"] = [A_PRIVATE_KEY]
        return
    try:
        certificates = x509.load_pem_x509_certificates(value.encode("utf-8", errors="replace"))
    except ValueError:
        errors["tls_ca_cert"] = [NOT_PEM]
        return
    # Re-encoded, the text is ASCII as ssl's cadata needs, and equal for an equal certificate.
    clean["tls_ca_cert"] = "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in certificates)


def _default_ports(clean: dict[str, Any]) -> None:
    """On create, a port left out is the usual one for its TLS mode: 993 or 143 (IMAP), 465 or 587 (SMTP)."""
    for name, (mode, implicit, other) in DEFAULT_PORTS.items():
        if clean.get(name) is None:
            clean[name] = implicit if clean.get(mode) == "ssl" else other


def _smtp_uses_oauth2(clean: dict[str, Any], current: dict[str, Any], *, oauth2: bool) -> bool:
    """Whether SMTP logs in with the OAuth2 token after the change (no SMTP password of its own)."""
    if not oauth2:
        return False
    own = (
        clean["smtp_password"] if clean.get("smtp_password") is not None else current.get("smtp_password_set")
    )
    return not own


def _require_password_when_switching(
    clean: dict[str, Any], current: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """Back to auth_type password on a server that never had one stored: the password must come along."""
    if current.get("password_set") or clean.get("password"):
        return
    errors.setdefault("password", []).append('This field is required when auth_type is "password".')


def _reject_control_characters(clean: dict[str, Any], errors: dict[str, list[str]]) -> None:
    """No control characters in the fields that reach the IMAP wire or a log line; no NUL anywhere."""
    for name in (*TEXT_FIELDS, "password", "smtp_password", *oauth2_rules.TOKEN_FIELDS, "folders_to_sync"):
        value = clean.get(name)
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            errors.setdefault(name, []).append("Null characters are not allowed.")
        elif name != "folders_to_sync" and CONTROL_CHARACTERS.search(value):
            errors.setdefault(name, []).append("Control characters (such as line breaks) are not allowed.")


def _resolve_tls(
    clean: dict[str, Any], current: dict[str, Any], errors: dict[str, list[str]], *, creating: bool
) -> None:
    """Settle ``tls_mode`` and ``use_ssl`` together, so that use_ssl == (tls_mode == "ssl") always holds.

    An explicit ``tls_mode`` wins; ``use_ssl`` alone (the apidoc field) means ``ssl`` when true and
    STARTTLS when false (a stored ``none`` stays ``none``: use_ssl=false says nothing against it).
    """
    mode, use_ssl = clean.get("tls_mode"), clean.get("use_ssl")
    if "tls_mode" in clean:
        if mode is None:
            return  # already reported as null
        if mode not in TLS_MODES:
            errors.setdefault("tls_mode", []).append(f'"{mode}" is not a valid choice.')
            return
        if use_ssl is not None and use_ssl != (mode == "ssl"):
            errors.setdefault("tls_mode", []).append(
                f'tls_mode "{mode}" contradicts use_ssl={str(use_ssl).lower()}: send tls_mode alone.'
            )
            return
        clean["use_ssl"] = mode == "ssl"
    elif use_ssl is not None:
        stored = current.get("tls_mode")
        clean["tls_mode"] = "ssl" if use_ssl else (stored if stored in ("starttls", "none") else "starttls")
    elif creating and "use_ssl" not in clean:
        clean["use_ssl"], clean["tls_mode"] = True, "ssl"


def _require_password_for_new_destination(
    clean: dict[str, Any], current: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """A new host, port or TLS setting must come with the password: else an API caller who cannot read
    the stored password could still have it sent to a server of their choice, or in clear text."""
    if clean.get("password"):
        return
    # A field already refused (null, not a hostname...) is no new destination: its own error says enough.
    if any(
        name in clean and name not in errors and clean[name] is not None and clean[name] != current.get(name)
        for name in DESTINATION_FIELDS
    ):
        errors.setdefault("password", []).append(PASSWORD_AGAIN)


def _fill_smtp_preset(
    clean: dict[str, Any], current: dict[str, Any] | None, given: set[str], errors: dict[str, list[str]]
) -> None:
    """A well-known IMAP host fills the SMTP settings left out, on create or when the host changes
    and the server has no SMTP host yet (imap2api.sending.presets)."""
    if "host" in errors or clean.get("smtp_host") or not clean.get("host"):
        return
    if current is not None and (clean["host"] == current.get("host") or current.get("smtp_host")):
        return
    if "smtp_host" in given and current is not None:
        return  # an explicit blank on update: sending stays off
    fill_smtp(clean, clean["host"], given=given)


def _require_password_for_new_smtp_destination(
    clean: dict[str, Any], current: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """The SMTP side of the password rule: a new SMTP destination must come with the password SMTP
    logs in with (its own when one is stored, else the IMAP one); so must dropping the SMTP password."""
    host = clean.get("smtp_host", current.get("smtp_host"))
    auth = clean.get("smtp_auth", current.get("smtp_auth", True))
    smtp_password = clean.get("smtp_password")
    if not host or auth is False or smtp_password:
        return  # nothing is sent, no login, or a new SMTP password comes with the change
    dropping = smtp_password == "" and bool(current.get("smtp_password_set"))
    changed = any(
        name in clean and name not in errors and clean[name] is not None and clean[name] != current.get(name)
        for name in SMTP_DESTINATION_FIELDS
    )
    if not (changed or dropping):
        return
    if current.get("smtp_password_set") and not dropping:
        errors.setdefault("smtp_password", []).append(SMTP_PASSWORD_AGAIN)
    elif not clean.get("password"):
        errors.setdefault("password", []).append(IMAP_PASSWORD_FOR_SMTP)


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
