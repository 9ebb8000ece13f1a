"""Settings read from the environment (prefix ``IMAP2API_``); see docs in the README."""

from __future__ import annotations

import json
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of imap2api; each field is ``IMAP2API_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="IMAP2API_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    # Every Redis key and channel starts with "<prefix>:", so deployments (and tests) can share a Redis.
    redis_prefix: str = Field(default="imap2api", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    secret_key: str | None = None

    # NoDecode: a comma-separated value is split by _split_lists, not parsed as JSON first.
    cors_origins: Annotated[list[str] | None, NoDecode] = None
    trusted_proxies: Annotated[list[str], NoDecode] = []
    token_ttl_hours: float = 0.0
    rate_limit_user: str = "1000/hour"
    rate_limit_anon: str = "100/hour"
    rate_limit_enabled: bool = True
    max_request_bytes: int = 1_048_576
    request_timeout_seconds: float = 30.0
    shutdown_timeout_seconds: float = 10.0
    graphql_max_cost: int = 50_000
    max_response_body_chars: int = 20_000_000

    page_size: int = 50
    max_page_size: int = 100
    max_thread_emails: int = 500

    sync_interval_seconds: int = 300
    scheduler_enabled: bool = True
    sync_batch_messages: int = 200
    sync_batch_bytes: int = 16_000_000
    sync_max_body_chars: int = 2_000_000
    sync_lease_seconds: int = 120
    imap_timeout_seconds: float = 30.0
    imap_tls_verify: bool = True
    imap_ca_file: str | None = None
    sync_max_message_bytes: int = 25_000_000
    sync_wait_timeout_seconds: float = 600.0
    sync_run_timeout_seconds: float = 3600.0
    write_wait_seconds: float = Field(default=10.0, ge=0)  # a write waits this long for a sync under way

    # Push (imap2api.watch): every active server is watched over NOTIFY, IDLE or STATUS polling.
    watch_enabled: bool = True
    watch_lease_seconds: int = Field(default=60, ge=2)  # a dead worker's servers move on after this
    watch_idle_seconds: float = Field(default=600.0, ge=1, le=1740)  # IDLE re-issued before 29 min
    # A NOTIFY connection is started afresh this often (Dovecot's NOTIFY goes slow after a while).
    watch_notify_renew_seconds: float = Field(default=120.0, ge=1)
    watch_poll_seconds: float = Field(default=30.0, ge=1)  # STATUS polling of folders nothing else watches
    # Folders worth an IDLE connection of their own when the server has no NOTIFY (special-use or names).
    watch_idle_folders: Annotated[list[str], NoDecode] = ["\\Sent", "\\Archive", "\\Flagged", "\\Drafts"]
    watch_max_connections: int = Field(default=4, ge=1)  # per server, NOTIFY's and INBOX's included
    watch_idle_with_notify: bool = True  # those folders get their IDLE beside NOTIFY too
    watch_debounce_ms: int = Field(default=30, ge=0)  # notices this close together make one push sync
    watch_reconnect_max_seconds: float = Field(default=300.0, ge=1)
    watch_sync_threads: int = Field(default=8, ge=1)  # push syncs at once, per process
    watch_max_servers: int = Field(default=10_000, ge=0)  # per process (0: this process watches none)

    # Measured by bench.accounts (1,000 accounts × 200 messages on 2 cores; bench/README.md): 2 processes
    # × 8 scheduled-sync threads are CPU-bound like as many raw clients, ~370 MB per process at the peak.
    worker_processes: int = 2
    worker_threads: int = 4
    embedded_worker_threads: int = 2
    sync_worker_threads: int = 8
    sync_request_threads: int = 4

    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 30.0
    webhook_retry_span_seconds: float = 86_400.0
    webhook_disable_after_seconds: float = 86_400.0

    # Sending (imap2api.sending): bounds of one message, and the per-user rate (from the request limiter).
    send_max_message_bytes: int = Field(default=25_000_000, ge=10_000)
    send_max_recipients: int = Field(default=100, ge=1)
    send_rate_limit: str = "100/hour"  # messages per user; "0/hour" disables sending
    send_retry_base_seconds: float = Field(default=60.0, gt=0)  # then doubling, with jitter
    send_retry_span_seconds: float = Field(default=86_400.0, gt=0)  # a message is retried this long
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)  # per SMTP read or write
    smtp_deadline_seconds: float = Field(default=300.0, gt=0)  # one whole SMTP transaction
    message_id_domain: str = ""  # the Message-ID's right side (blank: the sender address's domain)

    # OAuth2 (imap2api.oauth2, docs/oauth2.md): the apps registered with Google and Microsoft, and bounds.
    public_url: str = ""  # how browsers reach this service (the callback's base); blank: from the request
    oauth2_google_client_id: str = ""
    oauth2_google_client_secret: str = ""
    oauth2_google_scope: str = "https://mail.google.com/"
    oauth2_google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth2_google_token_url: str = "https://oauth2.googleapis.com/token"
    oauth2_microsoft_client_id: str = ""
    oauth2_microsoft_client_secret: str = ""
    oauth2_microsoft_tenant: str = "common"  # or "organizations", "consumers", a tenant id or domain
    oauth2_microsoft_scope: str = (
        "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access"
    )
    # "{tenant}" is replaced by the tenant above.
    oauth2_microsoft_authorize_url: str = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
    oauth2_microsoft_token_url: str = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
    oauth2_refresh_margin_seconds: float = Field(default=300.0, ge=0)  # refreshed this long before expiry
    oauth2_keepalive_days: float = Field(default=7.0, gt=0)  # an unused refresh token is used this often
    oauth2_state_minutes: float = Field(default=10.0, gt=0)  # a hosted flow must finish within this
    oauth2_timeout_seconds: float = Field(default=10.0, gt=0)  # one request to a token endpoint
    oauth2_allow_private: bool = False  # custom token URLs may lead to private addresses
    # Origins the hosted flow may send the browser back to (return_to); this service's own always.
    oauth2_return_origins: Annotated[list[str], NoDecode] = []

    history_retention_days: int = 30
    # Tombstones of deleted emails are kept this long: a change-feed cursor is good for at least that.
    changes_retention_days: int = Field(default=30, ge=0)

    admin_session_hours: float = 12.0
    admin_cookie_secure: bool = False

    log_level: str = "INFO"
    log_format: str = Field(default="text", pattern="^(text|json)$")

    @field_validator(
        "cors_origins", "trusted_proxies", "watch_idle_folders", "oauth2_return_origins", mode="before"
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        """Accept a comma-separated string as well as a JSON list."""
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: in-process queue, in-memory counters."""
        return not self.redis_url

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data directory."""
        if self.database_url:
            url = self.database_url
            # Heroku-style URLs name the dialect "postgres", which SQLAlchemy 2 refuses.
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            return url
        make_private_dir(self.data_dir)
        return f"sqlite:///{(self.data_dir / 'imap2api.sqlite3').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret key, or one generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        make_private_dir(self.data_dir)
        key = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def make_private_dir(path: Path) -> None:
    """Create the data directory readable by its owner only (0700), tightening an existing one:
    it holds the mirrored mail and the key that decrypts the stored passwords."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = path.stat()
    if status.st_mode & 0o077 and status.st_uid == os.getuid():
        path.chmod(0o700)


class _LazySettings:
    """Stands for the process's ``Settings``, read from the environment on first use, never at import:
    a program (or a test) may set ``IMAP2API_*`` any time before it first reads a setting."""

    __slots__ = ()
    _instance: Settings | None = None

    @classmethod
    def instance(cls) -> Settings:
        """The settings, read now if nothing has read them yet."""
        if cls._instance is None:
            cls._instance = Settings()
        return cls._instance

    def __getattr__(self, name: str) -> Any:
        return getattr(self.instance(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.instance(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.instance(), name)

    def __repr__(self) -> str:
        return repr(self.instance())


# Everyone imports this one object; reading an attribute reads the settings (built on first use).
settings: Settings = cast(Settings, _LazySettings())


def reload_settings(**overrides: object) -> Settings:
    """Re-read the environment into the shared settings (used by the CLI and tests), in place: a
    caller holding ``settings`` sees the new values."""
    fresh = Settings(**overrides)  # type: ignore[arg-type]
    current = _LazySettings.instance()
    for name in Settings.model_fields:
        setattr(current, name, getattr(fresh, name))
    current.__dict__.pop("resolved_secret_key", None)
    return settings
