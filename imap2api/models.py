"""SQLModel tables: the mirror's whole schema. Secrets are stored hashed or encrypted, never plain."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# SQLite's AUTOINCREMENT: a deleted row's id is never handed out again (migration 0008), as with
# PostgreSQL's sequences; without it SQLite gives a new row the highest id + 1, a deleted one's.
IDS_NEVER_REUSED = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always UTC and timezone-aware in Python, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201
        """Normalise to UTC; SQLite gets naive UTC so its text values sort chronologically."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Column:
    """A timezone-aware UTC timestamp column."""
    return Column(UTCDateTime(), nullable=nullable, index=index)


class User(SQLModel, table=True):
    """A person or program that owns IMAP servers and webhooks."""

    __tablename__ = "users"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    is_admin: bool = False
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ApiToken(SQLModel, table=True):
    """An API token; only its SHA-256 is stored, the key is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    key_prefix: str = Field(max_length=8)
    name: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts())


class AdminSession(SQLModel, table=True):
    """A login at /admin; the cookie carries the key, only its SHA-256 is stored, logout deletes it."""

    __tablename__ = "admin_sessions"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))


class ImapServer(SQLModel, table=True):
    """An IMAP account of a user, with the apidoc fields and its scheduling state."""

    __tablename__ = "imap_servers"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=255)
    host: str = Field(max_length=255)
    port: int = 993
    username: str = Field(max_length=255)
    password_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    use_ssl: bool = True
    # ssl (implicit TLS), starttls (required) or none (clear text, only when chosen); use_ssl mirrors "ssl".
    tls_mode: str = Field(default="ssl", max_length=10)
    sync_limit_type: str = Field(default="all", max_length=10)
    sync_limit_value: int | None = None
    folders_to_sync: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    exclude_trash: bool = True
    sync_interval_seconds: int | None = None
    is_active: bool = True
    last_sync: datetime | None = Field(default=None, sa_column=_ts())
    last_sync_status: str = Field(default="", max_length=20)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    next_sync_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


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
    has_attachments: bool = False
    announced: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


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


class SyncRun(SQLModel, table=True):
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
    status: str = Field(default="queued", max_length=20)  # queued, running, success, error
    trigger: str = Field(default="manual", max_length=20)  # manual, schedule, cli
    progress_done: int = 0
    progress_total: int = 0
    folders_synced: int = 0
    messages_new: int = 0
    messages_updated: int = 0
    messages_deleted: int = 0
    bytes_fetched: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    error_code: str = Field(default="", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts())


class Webhook(SQLModel, table=True):
    """An endpoint a user wants events POSTed to, signed per Standard Webhooks."""

    __tablename__ = "webhooks"
    __table_args__ = IDS_NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    imap_server_id: int | None = Field(default=None, foreign_key="imap_servers.id", ondelete="CASCADE")
    url: str = Field(sa_column=Column(Text, nullable=False))
    events: str = Field(default="email.received,thread.updated,sync.completed", max_length=255)
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    is_active: bool = True
    disabled_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    failing_since: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


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


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver one event to one webhook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_event", "event_id", "webhook_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        IDS_NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id", index=True, ondelete="CASCADE")
    event_id: str = Field(foreign_key="events.id", max_length=40, ondelete="CASCADE")
    event_type: str = Field(max_length=40)
    attempt: int = 1
    status: str = Field(default="pending", max_length=20)  # pending, sending, success, retrying, failed
    response_status: int | None = None
    response_body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    duration_ms: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts())
