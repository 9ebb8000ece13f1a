"""The ImapServer type and its input, derived from ``models.ImapServerPublic`` / ``ImapServerCreate``."""

from __future__ import annotations

from typing import Any

from imap2api.enums import TlsMode
from imap2api.graphql import derive
from imap2api.models import ImapServer, ImapServerCreate, ImapServerPublic

__all__ = ["ImapServerInput", "ImapServerType", "TlsMode", "input_fields", "to_gql_imap_server"]


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
