"""The ImapServer type and its input, derived from ``models.ImapServerPublic`` / ``ImapServerCreate``."""

from __future__ import annotations

from typing import Any

import strawberry

from imap2api.enums import TlsMode
from imap2api.graphql import derive
from imap2api.models import ImapServer, ImapServerCreate, ImapServerPublic
from imap2api.services.connection_check import ConnectionCheck

__all__ = [
    "ImapConnectionTestType",
    "ImapServerInput",
    "ImapServerType",
    "TlsMode",
    "input_fields",
    "to_gql_connection_test",
    "to_gql_imap_server",
]


@derive.output_type(ImapServerPublic, name="ImapServer")
class ImapServerType:
    """An IMAP account being mirrored. The password is write-only and never returned."""


def to_gql_imap_server(server: ImapServer) -> ImapServerType:
    """Convert an ImapServer row to its GraphQL type."""
    return derive.to_gql(ImapServerType, server)


@derive.input_type(
    ImapServerCreate, name="ImapServerInput", first=("name", "host", "port", "username", "password")
)
class ImapServerInput:
    """Server settings; on update only the fields given change.

    ``syncLimitValue`` is required and positive for every ``syncLimitType`` but ``ALL``.
    ``foldersToSync`` is a comma-separated list of exact folder names (blank: every folder).
    ``tlsMode`` wins over ``useSsl`` (true: SSL, false: STARTTLS); a contradicting pair is refused.
    Changing host, port, useSsl or tlsMode needs ``password`` in the same input.
    With ``authType`` OAUTH2 no password is needed: the tokens come from ``startOAuth2Authorization`` or
    ``oauth2RefreshToken``, and the same rule asks for ``oauth2RefreshToken`` (docs/oauth2.md).
    """


def input_fields(data: Any) -> dict[str, Any]:
    """The fields of an input object that were actually given (null included), enums as their values."""
    return derive.given_fields(data)


@strawberry.type(name="ImapConnectionTest")
class ImapConnectionTestType:
    """The outcome of ``testImapServer``: logged in and listed, or why not (nothing is stored)."""

    ok: bool = strawberry.field(description="Whether the login and the folder list succeeded.")
    folders: list[str] = strawberry.field(description="The selectable folders' names (empty when not ok).")
    capabilities: list[str] = strawberry.field(
        description="The server's capabilities after login, sorted (empty when not ok)."
    )
    error: str | None = strawberry.field(description="Why the test failed (null when ok).")
    code: str | None = strawberry.field(
        description="The failure's code, as a sync's: IMAP_AUTH_FAILED, IMAP_TLS_FAILED... (null when ok)."
    )


def to_gql_connection_test(check: ConnectionCheck) -> ImapConnectionTestType:
    """Convert a connection test's outcome to its GraphQL type."""
    return ImapConnectionTestType(
        ok=check.ok,
        folders=check.folders,
        capabilities=check.capabilities,
        error=None if check.ok else check.error,
        code=None if check.ok else check.code,
    )
