"""Addresses of outgoing mail: parsing and checking the sender, recipients and Reply-To of a draft.

Pure functions over the stdlib ``email`` package and ``idna``, no I/O. ``ComposeError`` is the error
every part of composing raises (imap2api.mail.compose re-exports it, with ``Address`` and
``parse_address``). The decisions:

- **Addresses** are parsed with the ``email`` package's RFC 5322 parser; anything it reports a defect
  for is refused (``ComposeError`` naming the request field), except a non-ASCII local part, which
  RFC 6532 allows. One address per item: ``Doe, Ann <ann@example.com>`` is refused, as it reads as two
  (quote the name). Groups, domain literals (``ann@[192.0.2.1]``), single-label domains
  (``ann@localhost``: a typo far more often than a real recipient) and numeric top-level labels are
  refused; control characters always are (CR/LF would inject headers). The domain is normalised with
  UTS #46 (lower case, full-width forms folded) and kept in Unicode in ``Address.email``;
  ``ascii_email()`` gives its IDNA form. Addr-specs over 254 octets are refused: SMTP paths cannot
  carry them (RFC 5321 4.5.3.1.3).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address as HeaderAddress
from email.headerregistry import AddressHeader, HeaderRegistry
from typing import NamedTuple

import idna

__all__ = [
    "ADDRESS_REFUSED",
    "MAX_LINE",
    "Address",
    "ComposeError",
    "Mailbox",
    "checked_mailbox",
    "has_refused",
    "idna_domain",
    "parse_address",
]

MAX_LINE = 998  # octets of a line, CRLF excluded (RFC 5322 2.1.1)
_MAX_ADDR_SPEC = 254  # octets: an SMTP path is 256 with its angle brackets (RFC 5321 4.5.3.1.3)

_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Unicode categories never allowed in an address (nor in a subject or display name): controls (CR/LF
# among them), line and paragraph separators, surrogates.
ADDRESS_REFUSED = frozenset({"Cc", "Zl", "Zp", "Cs"})
# The email package's header parser, for one To value; its default classes are all it needs.
_HEADERS = HeaderRegistry()


class ComposeError(ValueError):
    """A draft that cannot become a message; ``field`` names the request field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Address:
    """A mailbox: display name ("" if none) and addr-spec (non-ASCII local part and IDN domain allowed)."""

    name: str
    email: str

    def ascii_email(self) -> str | None:
        """The address with its domain in IDNA form (punycode); None when the local part is not ASCII."""
        local, _, domain = self.email.rpartition("@")
        if not local.isascii():
            return None
        ascii_domain = idna_domain(domain)
        return f"{local}@{ascii_domain}" if ascii_domain is not None else None


class Mailbox(NamedTuple):
    """One checked address, in the pieces the header writer takes."""

    name: str
    username: str  # unquoted local part
    domain: str  # lower case, Unicode (U-labels) when the address was typed so
    ascii_domain: str  # A-labels

    @property
    def address(self) -> Address:
        """The public form."""
        spec = HeaderAddress(username=self.username, domain=self.domain).addr_spec
        return Address(name=self.name, email=spec)

    @property
    def utf8(self) -> bool:
        """Whether the local part needs RFC 6532 (SMTPUTF8)."""
        return not self.username.isascii()

    def envelope(self) -> str:
        """The SMTP path: IDNA domain when the local part allows an ASCII address at all."""
        domain = self.domain if self.utf8 else self.ascii_domain
        return HeaderAddress(username=self.username, domain=domain).addr_spec

    def header(self, utf8: bool) -> HeaderAddress:
        """The header form: Unicode domains only in a UTF-8 message."""
        domain = self.domain if utf8 else self.ascii_domain
        return HeaderAddress(display_name=self.name, username=self.username, domain=domain)


def parse_address(value: str, *, field: str) -> Address:
    """One address (``ann@example.com``, ``Ann <ann@example.com>``...) checked and normalised."""
    return _parse_mailbox(value, field).address


def _parse_mailbox(value: str, field: str) -> Mailbox:
    """The checked pieces of one address; raises ComposeError naming ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise ComposeError("Enter an email address, such as ann@example.com.", field=field)
    if has_refused(value, ADDRESS_REFUSED):  # before stripping: "a@b.c\n" is refused too
        raise ComposeError(
            "An email address must not contain line breaks or control characters.", field=field
        )
    text = value.strip()
    if len(text.encode("utf-8")) > MAX_LINE:
        raise ComposeError(f"Ensure each address has no more than {MAX_LINE} characters.", field=field)
    if "@" not in text:
        raise ComposeError("Enter a valid email address, such as ann@example.com: it has no @.", field=field)
    invalid = ComposeError("Enter a valid email address, such as Ann <ann@example.com>.", field=field)
    try:
        header = _HEADERS("to", text)
        if not isinstance(header, AddressHeader):
            raise invalid
        groups, addresses = header.groups, header.addresses
        defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    except Exception:  # the parser has a few IndexErrors on truncated input ("ann@")
        raise invalid from None
    if len(addresses) > 1 or (len(groups) > 1 and addresses):
        raise ComposeError(
            "Enter one address per entry; quote a name that contains a comma, as in "
            '"Doe, Ann" <ann@example.com>.',
            field=field,
        )
    if defects or len(addresses) != 1 or any(group.display_name is not None for group in groups):
        raise invalid
    found = addresses[0]
    if not found.username or not found.domain:
        raise invalid
    if found.domain.startswith("["):
        raise ComposeError(
            "Enter an address at a domain name; IP address literals are not accepted.", field=field
        )
    domain, ascii_domain = _domain(found.domain, field)
    mailbox = Mailbox(found.display_name.strip(), found.username, domain, ascii_domain)
    if len(mailbox.envelope().encode("utf-8")) > _MAX_ADDR_SPEC:
        raise ComposeError(f"Ensure the address has no more than {_MAX_ADDR_SPEC} characters.", field=field)
    return mailbox


def _domain(value: str, field: str) -> tuple[str, str]:
    """(Unicode form, IDNA form) of a mail domain, both lower case; raises ComposeError."""
    invalid = ComposeError(
        f"Enter a valid domain after the @, such as example.com (in {field}).", field=field
    )
    try:
        mapped = idna.uts46_remap(value, std3_rules=True, transitional=False)
        ascii_domain = idna.encode(mapped).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise invalid from None
    labels = ascii_domain.split(".")
    if (
        len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_LDH_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise invalid
    return (mapped if not mapped.isascii() else ascii_domain), ascii_domain


def idna_domain(domain: str) -> str | None:
    """A domain in A-labels, None when it is not a valid name."""
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(idna.uts46_remap(domain, std3_rules=True, transitional=False)).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def checked_mailbox(address: Address, field: str) -> Mailbox:
    """An Address from the caller, checked again: it may have been built without parse_address."""
    if not isinstance(address, Address):
        raise ComposeError("Enter an email address, such as ann@example.com.", field=field)
    mailbox = _parse_mailbox(address.email, field)
    if mailbox.name:  # the email held a whole "Name <addr>": it belongs in two fields
        raise ComposeError("Enter the address alone, such as ann@example.com.", field=field)
    name = address.name if isinstance(address.name, str) else ""
    if has_refused(name, ADDRESS_REFUSED):
        raise ComposeError("A display name must not contain line breaks or control characters.", field=field)
    return mailbox._replace(name=" ".join(name.split()))


def has_refused(text: str, categories: frozenset[str]) -> bool:
    """Whether ``text`` holds a character of one of these Unicode categories."""
    if text.isprintable():  # the common case, in C; only non-printable characters need a look
        return False
    return any(unicodedata.category(char) in categories for char in text if not char.isprintable())
