"""SQLModel tables, the mirror's whole schema, and the one declaration of each API field.

Secrets are stored hashed or encrypted, never plain. In the style of full-stack-fastapi-template,
a resource's fields are declared once, on a base the table inherits (``ImapServerSettings`` →
``ImapServerBase`` → the ``ImapServer`` table), with their type, default, bounds and description;
the non-table variants are what the APIs take and show: ``ImapServerCreate`` (the writable settings
and the write-only password) and ``ImapServerPublic`` (with the id and the readable state). Every
layer derives its shape from these: the GraphQL types and inputs (``imap2api.graphql.derive``), the
REST selections, coercions, converters and OpenAPI models (``imap2api.rest.shapes``), crud's
``WRITABLE`` and the defaults, bounds and "not null" rules of ``imap2api.validation``.
Enum-typed fields (``imap2api.enums``) are stored as plain strings (``_choice``).

To add a field to IMAP servers:

1. declare it here, on ``ImapServerSettings`` if its owner writes it (on ``ImapServerBase`` if it is
   only shown, on the table if no API shows it): type, default, bounds, ``description``;
2. add a migration in imap2api/migrations/versions/ (tests/test_migrations.py checks that it matches);
3. if the admin should edit it, a field on ``imap2api.admin.servers.ServerForm``;
4. regenerate the references: ``imap2api docs docs`` (tests/test_docs.py checks them).

GraphQL (type and input), REST (selection, coercion, camelCase map, JSON, OpenAPI), crud and the
generic rules pick it up; a rule of its own (beyond type, bound, null) goes into validation.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import AutoString, Field, SQLModel

from imap2api.enums import (
    DEFAULT_EVENT_TYPES,
    AuthType,
    DeliveryStatus,
    EventType,
    LastSyncStatus,
    OAuth2Provider,
    SendStatus,
    SentCopy,
    SmtpSecurity,
    SyncLimitType,
    SyncStatus,
    SyncTrigger,
    TlsMode,
)

# SQLite's AUTOINCREMENT: a deleted row's id is never handed out again (migration 0008), as with
# PostgreSQL's sequences; without it SQLite gives a new row the highest id + 1, a deleted one's.
IDS_NEVER_REUSED = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC and timezone-aware in Python, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; SQLite gets naive UTC so its text values sort chronologically."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _choice(default: StrEnum, *, max_length: int, description: str | None = None) -> Any:
    """A field typed by a StrEnum, stored as its value in a plain string column (no SQL enum type)."""
    return Field(
        default=default, max_length=max_length, sa_type=AutoString(length=max_length), description=description
    )


def _ts(*, nullable: bool = True, index: bool = False) -> Column[datetime]:
    """A timezone-aware UTC timestamp column."""
    return Column(UTCDateTime(), nullable=nullable, index=index)


def _seq() -> Column[int]:
    """A change-sequence column: BigInteger, not null, 0 for rows from before it existed."""
    return Column(BigInteger, nullable=False, default=0, server_default=text("0"))


class UserBase(SQLModel):
    """An account as every API shows it (but its id)."""

    username: str = Field(max_length=150, unique=True, index=True)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class User(UserBase, table=True):
    """A person or program that owns IMAP servers and webhooks."""

    __tablename__ = "users"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = True


class UserPublic(UserBase):
    """An account of this imap2api instance."""

    id: int


class ApiTokenBase(SQLModel):
    """An API token as its owner sees it (but its id, prefix and expiry)."""

    name: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(ApiTokenBase, table=True):
    """An API token; only its SHA-256 is stored, the key is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    key_prefix: str = Field(max_length=8)


class ApiTokenPublic(ApiTokenBase):
    """One API token, without its key."""

    id: int
    prefix: str = Field(description="The key's first 8 characters, to tell tokens apart.")
    expires_at: datetime | None = Field(description="Null: the token does not expire.")


class AdminSession(SQLModel, table=True):
    """A login at /admin; the cookie carries the key, only its SHA-256 is stored, logout deletes it."""

    __tablename__ = "admin_sessions"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))


class ImapServerSettings(SQLModel):
    """The settings of an IMAP account its owner writes (the password apart: it is write-only)."""

    name: str = Field(max_length=255, description="A label for the account.")
    host: str = Field(max_length=255, description="The IMAP server's host name or IP address.")
    port: int = Field(
        default=993,
        ge=1,
        le=65535,
        description="Left out on create: 993 for implicit TLS (ssl), 143 otherwise.",
    )
    username: str = Field(max_length=255, description="The IMAP login.")
    use_ssl: bool = Field(
        default=True,
        description="The apidoc switch: true is implicit TLS, false STARTTLS (or a stored none).",
    )
    tls_mode: TlsMode = _choice(
        TlsMode.SSL,
        max_length=10,
        description="Implicit TLS, STARTTLS (required) or none (clear text, only if you must); "
        "wins over the use-SSL switch, which decides when it is left out.",
    )
    tls_verify: bool = Field(
        default=True,
        description="Check the server's certificate and name; false accepts any certificate (a "
        "self-signed one, say): still encrypted, but no longer protected against impostors.",
    )
    tls_ca_cert: str = Field(
        default="",
        sa_type=Text,
        description="PEM certificates to trust for this server besides the system's (a self-signed "
        "server's own certificate, or a private CA): verified, unlike tls_verify false (IMAP and SMTP).",
    )
    sync_interval_seconds: int | None = Field(
        default=None, ge=60, description="Seconds between scheduled syncs (null: the service's default)."
    )
    is_active: bool = Field(
        default=True, description="Synced on schedule and watched for new mail (false: only when asked)."
    )
    sync_limit_type: SyncLimitType = _choice(
        SyncLimitType.ALL, max_length=10, description="Which messages are mirrored (a month is 30 days)."
    )
    sync_limit_value: int | None = Field(
        default=None, ge=1, description="The N of every limit type but all: required and positive."
    )
    folders_to_sync: str = Field(
        default="", sa_type=Text, description="Exact folder names, comma-separated (blank: every folder)."
    )
    exclude_trash: bool = Field(default=True, description="Skip the Trash and Junk folders.")
    # Sending (imap2api.sending): the account's SMTP server; blank host: sending is off.
    email_address: str = Field(
        default="",
        max_length=320,
        description="The address mail is sent from (blank: the IMAP username, when it is an address).",
    )
    display_name: str = Field(default="", max_length=255, description="The name sent beside it in From.")
    smtp_host: str = Field(
        default="",
        max_length=255,
        description="The SMTP server mail is sent through (blank: sending is off); filled from a preset "
        "for well-known IMAP hosts (Gmail, Office 365, iCloud...).",
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description="Left out on create: 465 for implicit TLS (ssl), 587 otherwise.",
    )
    smtp_security: SmtpSecurity = _choice(
        SmtpSecurity.STARTTLS,
        max_length=10,
        description="Implicit TLS, STARTTLS (required) or none (clear text, only if you must).",
    )
    smtp_username: str = Field(
        default="", max_length=255, description="The SMTP login (blank: the IMAP one)."
    )
    smtp_auth: bool = Field(
        default=True, description="Log in to the SMTP server (false: a relay without login)."
    )
    save_sent: bool = Field(
        default=True,
        description="Append each sent message to the Sent folder; false where the provider files it itself "
        "(Gmail, Office 365).",
    )
    # OAuth2 (imap2api.oauth2, docs/oauth2.md): the tokens and the client secret are write-only.
    auth_type: AuthType = _choice(
        AuthType.PASSWORD,
        max_length=10,
        description="password (LOGIN) or oauth2 (SASL XOAUTH2 or OAUTHBEARER with the stored tokens, for "
        "IMAP and SMTP alike).",
    )
    oauth2_provider: OAuth2Provider | None = Field(
        default=None,
        max_length=10,
        sa_type=AutoString(length=10),
        description="Who issues the tokens: google, microsoft (client and URLs from the service's settings) "
        "or custom (the server's own token URL and client); filled for Gmail and Office 365 hosts.",
    )
    oauth2_token_url: str = Field(
        default="",
        max_length=2000,
        description="custom only: the provider's token endpoint, where tokens are refreshed (https).",
    )
    oauth2_client_id: str = Field(
        default="", max_length=255, description="custom only: the OAuth2 client the tokens were issued to."
    )


class ImapServerBase(ImapServerSettings):
    """The settings and the readable state of an IMAP account (what the API shows, but its id)."""

    last_sync: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="When the last successful sync ended."
    )
    # A plain string (blank: never synced; else a LastSyncStatus), shown as stored by every API.
    last_sync_status: str = Field(
        default=LastSyncStatus.NEVER.value, max_length=20, description="success or error (blank: never)."
    )
    last_error: str = Field(
        default="", sa_type=Text, description="Why the last sync failed (blank if it did not)."
    )
    oauth2_token_stored: bool = Field(
        default=False,
        description="An OAuth2 refresh (or access) token is stored, from the hosted flow or the caller.",
    )
    needs_reauth: bool = Field(
        default=False,
        description="The OAuth2 provider refused the stored tokens (revoked, expired, password changed): "
        "connect the account again (docs/oauth2.md); syncs fail with OAUTH2_REAUTH_REQUIRED until then.",
    )
    watch_status: str = Field(
        default="",
        max_length=500,
        description="How push watches the server now, e.g. NOTIFY, IDLE on INBOX, reconnecting in 8 s: "
        "… (blank: not watched; docs/sync.md, Push).",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class ImapServer(ImapServerBase, table=True):
    """An IMAP account of a user, with the apidoc fields and its scheduling state."""

    __tablename__ = "imap_servers"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    password_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    # "": SMTP logs in with the IMAP password.
    smtp_password_encrypted: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # OAuth2: the tokens (encrypted; "" none), when the access token expires and was last refreshed.
    oauth2_refresh_token_encrypted: str = Field(
        default="", sa_column=Column(Text, nullable=False, default="")
    )
    oauth2_access_token_encrypted: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    oauth2_expires_at: datetime | None = Field(default=None, sa_column=_ts())
    oauth2_refreshed_at: datetime | None = Field(default=None, sa_column=_ts())
    oauth2_client_secret_encrypted: str = Field(
        default="", sa_column=Column(Text, nullable=False, default="")
    )
    next_sync_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts())
    # Push (imap2api.watch): which worker process watches the server, and until when.
    watch_owner: str | None = Field(default=None, max_length=100)
    watch_expires_at: datetime | None = Field(default=None, sa_column=_ts())


class Watcher(SQLModel, table=True):
    """A process that watches servers (imap2api.watch), alive while it renews ``expires_at``.

    The watch leases are balanced over the live ones: a process that just started holds no lease
    yet, and is counted all the same.
    """

    __tablename__ = "watchers"

    holder: str = Field(primary_key=True, max_length=100)
    expires_at: datetime = Field(sa_column=_ts(nullable=False))


class ImapServerCreate(ImapServerSettings):
    """What a client sends to add an account (on update every field is optional)."""

    password: str = Field(
        schema_extra={"json_schema_extra": {"writeOnly": True}},
        description="Write-only, stored encrypted; required again to change host, port or TLS.",
    )
    smtp_password: str | None = Field(
        default=None,
        schema_extra={"json_schema_extra": {"writeOnly": True}},
        description='Write-only, stored encrypted (null: the IMAP password; "": back to it); required '
        "again to change the SMTP host, port, security or login.",
    )
    oauth2_refresh_token: str | None = Field(
        default=None,
        schema_extra={"json_schema_extra": {"writeOnly": True}},
        description='Write-only, stored encrypted: a refresh token your own app obtained ("" drops the '
        "stored tokens); imap2api refreshes the access token with it.",
    )
    oauth2_access_token: str | None = Field(
        default=None,
        schema_extra={"json_schema_extra": {"writeOnly": True}},
        description="Write-only, stored encrypted: a current access token (optional; with its expiry).",
    )
    oauth2_expires_at: datetime | None = Field(
        default=None, description="When the given access token expires (ISO 8601; null: unknown)."
    )
    oauth2_client_secret: str | None = Field(
        default=None,
        schema_extra={"json_schema_extra": {"writeOnly": True}},
        description='custom only, write-only, stored encrypted: the client\'s secret ("" none: a public '
        "client).",
    )


class ImapServerPublic(ImapServerBase):
    """An IMAP account as the API shows it (never with its password)."""

    id: int


class Folder(SQLModel, table=True):
    """Sync state of one mailbox on a server: what was seen, so the next sync fetches only changes."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("imap_server_id", "name"), IDS_NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    imap_server_id: int = Field(foreign_key="imap_servers.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=1000)
    delimiter: str = Field(default="/", max_length=4)
    special_use: str = Field(default="", max_length=20)
    uidvalidity: int | None = Field(default=None, sa_column=Column(BigInteger))
    uidnext: int | None = Field(default=None, sa_column=Column(BigInteger))
    highestmodseq: int | None = Field(default=None, sa_column=Column(BigInteger))
    message_count: int = 0
    last_synced_at: datetime | None = Field(default=None, sa_column=_ts())
    # Emails mirrored in this folder, kept exact by triggers on emails (migration 0019): statistics read it.
    email_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Email(SQLModel, table=True):
    """One message in one folder; unique per folder + UIDVALIDITY + UID so re-syncs are idempotent."""

    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("folder_id", "uidvalidity", "uid"),
        Index("ix_emails_server_date", "imap_server_id", "date"),
        Index("ix_emails_server_thread", "imap_server_id", "thread_id"),
        Index("ix_emails_server_message_id", "imap_server_id", "message_id"),
        Index("ix_emails_owner_date", "owner_id", "date"),
        Index("ix_emails_owner_thread_date", "owner_id", "thread_id", "date"),
        Index("ix_emails_owner_folder", "owner_id", "folder"),
        Index("ix_emails_owner_change", "owner_id", "change_seq", "id"),
        IDS_NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    imap_server_id: int = Field(foreign_key="imap_servers.id", ondelete="CASCADE")
    folder_id: int = Field(foreign_key="folders.id", ondelete="CASCADE")
    folder: str = Field(max_length=1000)
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    modseq: int | None = Field(default=None, sa_column=Column(BigInteger))
    message_id: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    in_reply_to: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    references: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sender: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sender_name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    recipient: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    recipient_names: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    cc: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    date: datetime = Field(sa_column=_ts(nullable=False))
    internal_date: datetime | None = Field(default=None, sa_column=_ts())
    flags: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    seen: bool = False
    flagged: bool = False
    answered: bool = False
    size: int = 0
    body_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body_html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    thread_id: str = Field(default="", max_length=64)
    # RFC 8474 EMAILID where the server offers OBJECTID (Cyrus): the same in every folder, after a move
    # or a copy alike, so a moved message is recognised by it ("": the server has no OBJECTID).
    object_id: str = Field(default="", max_length=255)
    has_attachments: bool = False
    announced: bool = False
    # The change feed (imap2api.crud.changes): the owner's change sequence at the last write of
    # this row, and at its insert. 0: unchanged since before the feed existed.
    change_seq: int = Field(default=0, sa_column=_seq())
    created_seq: int = Field(default=0, sa_column=_seq())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ChangeCounter(SQLModel, table=True):
    """A user's change sequence: bumped once per transaction that writes their emails (crud.changes).

    No foreign key: a user's delete must not lock this row before their servers' rows (a sync locks
    the server, then this); a deleted user's counter stays behind, harmless (ids are never reused).
    """

    __tablename__ = "change_counters"

    owner_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    value: int = Field(default=0, sa_column=_seq())
    # Tombstones up to this sequence were pruned: a cursor before its end has expired.
    pruned_seq: int = Field(default=0, sa_column=_seq())


class EmailTombstone(SQLModel, table=True):
    """An email the sync deleted (expunged, its folder recreated or gone), kept for the change feed.

    Not written when a whole server or user is deleted: those rows cascade away with it.
    """

    __tablename__ = "email_tombstones"
    __table_args__ = (Index("ix_email_tombstones_owner_seq", "owner_id", "seq", "email_id"),)

    email_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    imap_server_id: int = Field(foreign_key="imap_servers.id", index=True, ondelete="CASCADE")
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))


class Attachment(SQLModel, table=True):
    """Metadata of an attachment; the bytes stay on the IMAP server."""

    __tablename__ = "attachments"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    email_id: int = Field(foreign_key="emails.id", index=True, ondelete="CASCADE")
    filename: str | None = Field(default=None, sa_column=Column(Text))
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = 0
    content_id: str | None = Field(default=None, sa_column=Column(Text))
    inline: bool = False
    # The part's IMAP section (2, 1.2...) and Content-Transfer-Encoding, for downloads ("": not known,
    # mirrored before migration 0013; the download then finds them in the message itself).
    section: str = Field(default="", max_length=100)
    encoding: str = Field(default="", max_length=30)


class ThreadKey(SQLModel, table=True):
    """Maps a Message-ID seen on a server (own or referenced) to the thread it belongs to."""

    __tablename__ = "thread_keys"
    __table_args__ = (
        UniqueConstraint("imap_server_id", "message_id"),
        Index("ix_thread_keys_thread", "imap_server_id", "thread_id"),
        IDS_NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    imap_server_id: int = Field(foreign_key="imap_servers.id", ondelete="CASCADE")
    message_id: str = Field(sa_column=Column(Text, nullable=False))
    thread_id: str = Field(max_length=64)


class ThreadSize(SQLModel, table=True):
    """How many mirrored emails one thread of a server holds; kept by triggers on emails (migration 0019)."""

    __tablename__ = "thread_sizes"

    imap_server_id: int = Field(foreign_key="imap_servers.id", primary_key=True, ondelete="CASCADE")
    thread_id: str = Field(primary_key=True, max_length=64)
    email_count: int


class ServerCount(SQLModel, table=True):
    """How many threads a server's mirrored emails form; kept by triggers on emails (migration 0019)."""

    __tablename__ = "server_counts"

    imap_server_id: int = Field(
        foreign_key="imap_servers.id",
        primary_key=True,
        ondelete="CASCADE",
        sa_column_kwargs={"autoincrement": False},
    )
    thread_count: int = 0


class SyncRunBase(SQLModel):
    """One sync of one server as the API shows it (but its id and its server)."""

    status: SyncStatus = _choice(SyncStatus.QUEUED, max_length=20)
    trigger: SyncTrigger = _choice(SyncTrigger.MANUAL, max_length=20)
    progress_done: int = Field(default=0, description="Messages fetched so far.")
    progress_total: int = Field(
        default=0, description="Messages to fetch, known once every folder is planned."
    )
    folders_synced: int = 0
    messages_new: int = 0
    messages_updated: int = 0
    messages_deleted: int = 0
    bytes_fetched: int = Field(default=0, sa_type=BigInteger, nullable=False)
    error: str = Field(default="", sa_type=Text)
    error_code: str = Field(
        default="", max_length=40, description="On error: IMAP_AUTH_FAILED, SYNC_CRASHED..."
    )
    missing_folders: str = Field(
        default="",
        sa_type=Text,
        description="Folders named in the server's folders_to_sync that it does not have (comma-separated; "
        "names are exact, case included); the run synced the others.",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SyncRun(SyncRunBase, table=True):
    """One sync of one server: status, progress and counts, readable while it runs."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        # At most one queued-or-running run per server, even when two processes ask at once.
        Index(
            "ux_sync_runs_one_active",
            "imap_server_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        IDS_NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    imap_server_id: int = Field(foreign_key="imap_servers.id", index=True, ondelete="CASCADE")


class WebhookSettings(SQLModel):
    """A webhook to create or change, as clients write it (on update every field is optional).

    The table stores ``events`` comma-separated and the server as ``imap_server_id``; crud.webhooks
    converts.
    """

    url: str = Field(max_length=2000, description="The http(s) URL the events are POSTed to.")
    events: list[EventType] = Field(
        default=list(DEFAULT_EVENT_TYPES),
        description="The event types sent (default: email.received, thread.updated, sync.completed).",
    )
    imap_server: int | None = Field(
        default=None, description="Only events of this server (null: every server)."
    )
    is_active: bool = Field(default=True, description="True re-activates an endpoint disabled for failing.")


class WebhookState(SQLModel):
    """What the service keeps about a webhook beside its settings, readable by its owner."""

    disabled_reason: str = Field(
        default="", sa_type=Text, description="Why the endpoint was disabled automatically, if it was."
    )
    failing_since: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="Since when every delivery has failed."
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Webhook(WebhookState, table=True):
    """An endpoint a user wants events POSTed to, signed per Standard Webhooks."""

    __tablename__ = "webhooks"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    imap_server_id: int | None = Field(default=None, foreign_key="imap_servers.id", ondelete="CASCADE")
    url: str = Field(sa_column=Column(Text, nullable=False))
    events: str = Field(default=",".join(DEFAULT_EVENT_TYPES), max_length=255)
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    is_active: bool = True


class WebhookPublic(WebhookState, WebhookSettings):
    """A webhook as the API shows it (never with its secret, except right after creation/rotation)."""

    id: int


class Event(SQLModel, table=True):
    """The outbox: an event written in the same transaction as the rows it describes."""

    __tablename__ = "events"

    id: str = Field(primary_key=True, max_length=40)  # "evt_" + random
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    imap_server_id: int | None = Field(default=None, foreign_key="imap_servers.id", ondelete="CASCADE")
    type: str = Field(max_length=40)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))
    dispatched_at: datetime | None = Field(default=None, sa_column=_ts(index=True))


class WebhookDeliveryBase(SQLModel):
    """One attempt to deliver one event to one webhook, as the API shows it (but its id and webhook)."""

    event_id: str = Field(foreign_key="events.id", max_length=40, ondelete="CASCADE")
    event_type: str = Field(max_length=40, description="An event type, or webhook.test.")
    attempt: int = 1
    status: DeliveryStatus = _choice(DeliveryStatus.PENDING, max_length=20)
    response_status: int | None = None
    response_body: str = Field(default="", sa_type=Text, description="The first 2 KB of the response.")
    error: str = Field(default="", sa_type=Text)
    duration_ms: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(WebhookDeliveryBase, table=True):
    """One attempt to deliver one event to one webhook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_event", "event_id", "webhook_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        IDS_NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id", index=True, ondelete="CASCADE")


class WebhookDeliveryPublic(WebhookDeliveryBase):
    """One attempt to deliver one event to one webhook."""

    id: int
    webhook: int


class SyncRunPublic(SyncRunBase):
    """One sync of one server; readable while it runs."""

    id: int
    imap_server: int


class OutboxMessageBase(SQLModel):
    """A message to send, as the API shows it (but its id and server)."""

    status: SendStatus = _choice(SendStatus.QUEUED, max_length=20)
    message_id: str = Field(max_length=255, description="The Message-ID header, with its angle brackets.")
    subject: str = Field(default="", sa_type=Text)
    to: list[str] = Field(default_factory=list, sa_type=Text, description="The To addresses, as written.")
    cc: list[str] = Field(default_factory=list, sa_type=Text)
    bcc: list[str] = Field(default_factory=list, sa_type=Text, description="Sent, never shown to the others.")
    size: int = Field(default=0, description="The message's size in bytes.")
    reply_to_email: int | None = Field(default=None, description="The email this message answers.")
    forward_email: int | None = Field(default=None, description="The email this message forwards.")
    attempts: int = Field(default=0, description="SMTP attempts so far.")
    error: str = Field(default="", sa_type=Text, description="Why the last attempt failed (blank if none).")
    error_code: str = Field(
        default="", max_length=40, description="SMTP_TEMPORARY, SMTP_REJECTED, SMTP_AUTH_FAILED..."
    )
    smtp_response: str = Field(
        default="", sa_type=Text, description="The SMTP server's last answer, e.g. 250 2.0.0 Ok: queued."
    )
    refused: list[str] = Field(
        default_factory=list,
        sa_type=Text,
        description="Recipients the SMTP server refused while taking the others, with its answer.",
    )
    sent_copy: SentCopy = _choice(
        SentCopy.PENDING,
        max_length=20,
        description="The copy in the Sent folder: pending, saved, by_provider or failed.",
    )
    email: int | None = Field(default=None, description="The sent copy's email, once it is mirrored.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    next_attempt_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, description="When the next attempt is due (null: none)."
    )
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """A message of the outbox: composed, queued, sent by the ``send_email`` actor (imap2api.sending).

    The lists are JSON text; the bytes (``raw``, Bcc included, as filed in Sent) are dropped once
    the message is sent and filed, failed or cancelled.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("owner_id", "idempotency_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_owner_created", "owner_id", "created_at"),
        # A sync asks which of a batch's Message-IDs the server's outbox sent (crud.outbox).
        Index("ix_outbox_server_message", "imap_server_id", "message_id"),
        IDS_NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    imap_server_id: int = Field(foreign_key="imap_servers.id", ondelete="CASCADE")
    status: str = Field(default=SendStatus.QUEUED.value, max_length=20)
    message_id: str = Field(max_length=255)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    to: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    cc: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    bcc: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    size: int = 0
    reply_to_email_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    forward_email_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    attempts: int = 0
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    error_code: str = Field(default="", max_length=40)
    smtp_response: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    refused: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    sent_copy: str = Field(default=SentCopy.PENDING.value, max_length=20)
    email_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts())
    sent_at: datetime | None = Field(default=None, sa_column=_ts())
    # What the worker needs: the envelope, the bytes, and who holds the message while sending it.
    envelope_from: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    envelope_to: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    smtputf8: bool = False
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    copy_attempts: int = 0
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(default="", max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts())


class OutboxMessagePublic(OutboxMessageBase):
    """A message of the outbox as the API shows it (never with its bytes)."""

    id: int
    imap_server: int


class OAuth2State(SQLModel, table=True):
    """A hosted OAuth2 flow under way (imap2api.oauth2.flow): bound to its user and server, used once.

    Only the state's SHA-256 is stored; the PKCE verifier is encrypted; the row goes when the provider
    sends the browser back, or ``OAUTH2_STATE_MINUTES`` after it was made.
    """

    __tablename__ = "oauth2_states"

    state_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    imap_server_id: int = Field(foreign_key="imap_servers.id", index=True, ondelete="CASCADE")
    provider: str = Field(max_length=10)
    code_verifier_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    redirect_uri: str = Field(sa_column=Column(Text, nullable=False))
    return_to: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    expires_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
