"""The ImapServer type and its input."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from imap2api.models import ImapServer


@strawberry.enum(name="TlsMode", description="How the connection to the IMAP server is protected.")
class TlsMode(Enum):
    """ssl: implicit TLS; starttls: STARTTLS, required; none: clear text, only when chosen."""

    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


@strawberry.type(name="ImapServer")
class ImapServerType:
    """An IMAP account being mirrored. The password is write-only and never returned."""

    id: strawberry.ID
    name: str
    host: str
    port: int
    username: str
    use_ssl: bool
    tls_mode: TlsMode
    sync_limit_type: str
    sync_limit_value: int | None
    folders_to_sync: str
    exclude_trash: bool
    last_sync: datetime | None
    last_sync_status: str
    last_error: str
    created_at: datetime
    updated_at: datetime


def to_gql_imap_server(server: ImapServer) -> ImapServerType:
    """Convert an ImapServer row to its GraphQL type."""
    return ImapServerType(
        id=strawberry.ID(str(server.id)),
        name=server.name,
        host=server.host,
        port=server.port,
        username=server.username,
        use_ssl=server.use_ssl,
        tls_mode=TlsMode(server.tls_mode),
        sync_limit_type=server.sync_limit_type,
        sync_limit_value=server.sync_limit_value,
        folders_to_sync=server.folders_to_sync,
        exclude_trash=server.exclude_trash,
        last_sync=server.last_sync,
        last_sync_status=server.last_sync_status,
        last_error=server.last_error,
        created_at=server.created_at,
        updated_at=server.updated_at,
    )


@strawberry.input
class ImapServerInput:
    """Server settings; on update only the fields given change.

    ``syncLimitType`` is one of all, last_n, days, weeks, months (a month is 30 days);
    ``syncLimitValue`` is required and positive for all but ``all``. ``foldersToSync`` is a
    comma-separated list of exact folder names (blank: every folder). ``tlsMode`` wins over
    ``useSsl`` (true: SSL, false: STARTTLS); a contradicting pair is refused. Changing host, port,
    useSsl or tlsMode needs ``password`` in the same input.
    """

    name: str | None = strawberry.UNSET
    host: str | None = strawberry.UNSET
    port: int | None = strawberry.UNSET
    username: str | None = strawberry.UNSET
    password: str | None = strawberry.UNSET
    use_ssl: bool | None = strawberry.UNSET
    tls_mode: TlsMode | None = strawberry.UNSET
    sync_limit_type: str | None = strawberry.UNSET
    sync_limit_value: int | None = strawberry.UNSET
    folders_to_sync: str | None = strawberry.UNSET
    exclude_trash: bool | None = strawberry.UNSET


def input_fields(data: Any) -> dict[str, Any]:
    """The fields of an input object that were actually given (null included)."""
    return {
        name: value.value if isinstance(value, Enum) else value
        for name, value in vars(data).items()
        if value is not strawberry.UNSET
    }
