"""IMAP server hosts: a DNS name (internationalised names included) or an IP literal, checked once.

The same rules decide what may be stored and what the connection sends to DNS and TLS, so a stored
host can never make a sync fail in the resolver's IDNA codec.
"""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_NAME_LENGTH = 253  # octets of a DNS name in ASCII, without the root's dot
# Letters, digits, hyphens, and underscores: not a hostname character by RFC 1123, but DNS and
# container service names (docker-compose) use them, and resolvers accept them.
ASCII_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
SCOPE_ID = re.compile(r"[A-Za-z0-9._-]{1,15}")  # an interface name or number, as in fe80::1%eth0
WITH_PORT = re.compile(r"[^:\[\]]+:\d*")
# 10.1, 1.2.3, 0x7f000001: the resolver reads these as IPv4 shorthands, not names (RFC 1123 2.1).
NUMERIC_LABEL = re.compile(r"\d+|0x[0-9a-f]*", re.IGNORECASE)

INVALID = "Enter a valid hostname or IP address, such as imap.example.com."
A_URL = "Enter the hostname alone, such as imap.example.com, without a scheme (imaps://) or a path."
A_PORT = "Enter the hostname alone; the port goes in the port field."


class InvalidHost(ValueError):
    """The text is not a hostname or IP address; the message says so in the API's words."""


def _ip_literal(value: str) -> str | None:
    """The canonical text of an IPv4 or IPv6 address (IPv6 with or without brackets), else None."""
    bracketed = value.startswith("[") and value.endswith("]")
    try:
        address = ipaddress.ip_address(value[1:-1] if bracketed else value)
    except ValueError:
        if bracketed:
            raise InvalidHost(INVALID) from None
        return None
    if bracketed and address.version != 6:
        raise InvalidHost(INVALID)
    scope = address.scope_id if isinstance(address, ipaddress.IPv6Address) else None
    if scope is not None and not SCOPE_ID.fullmatch(scope):
        raise InvalidHost(INVALID)
    return str(address)


def _ascii_name(value: str) -> str:
    """A DNS name in ASCII (A-labels), with UTS #46 mapping as browsers apply it; raises InvalidHost."""
    if "://" in value or "/" in value:  # a URL, or a name with a trailing slash: a path either way
        raise InvalidHost(A_URL)
    if WITH_PORT.fullmatch(value):
        raise InvalidHost(A_PORT)
    try:
        mapped = idna.uts46_remap(value, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidHost(INVALID) from None
    labels = []
    for label in mapped.split("."):  # an empty label (a..b, a trailing dot) fails below
        if label.isascii():
            if not ASCII_LABEL.fullmatch(label):
                raise InvalidHost(INVALID)
            if label.lower().startswith("xn--"):
                _check_a_label(label)
            labels.append(label)
        else:
            try:
                labels.append(idna.alabel(label).decode("ascii"))
            except (idna.IDNAError, UnicodeError, ValueError):
                raise InvalidHost(INVALID) from None
    if NUMERIC_LABEL.fullmatch(labels[-1]):
        raise InvalidHost(INVALID)
    name = ".".join(labels)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidHost(f"Ensure the hostname has no more than {MAX_NAME_LENGTH} characters in ASCII form.")
    return name


def _check_a_label(label: str) -> None:
    """An ``xn--`` label must decode to a valid internationalised label."""
    try:
        idna.ulabel(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidHost(INVALID) from None


def canonical_host(value: str) -> str:
    """The host to store: an IP address in its canonical form (no brackets), a name as it was given."""
    literal = _ip_literal(value)
    if literal is not None:
        return literal
    _ascii_name(value)
    return value


def ascii_host(value: str) -> str:
    """The host as DNS and TLS must see it: an IP address, or the name in A-labels; raises InvalidHost."""
    literal = _ip_literal(value)
    return literal if literal is not None else _ascii_name(value)
