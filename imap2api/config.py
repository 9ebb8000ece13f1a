"""Settings read from the environment (prefix ``IMAP2API_``); see docs in the README."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of imap2api; each field is ``IMAP2API_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="IMAP2API_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None

    cors_origins: list[str] | None = None
    rate_limit_user: str = "1000/hour"
    rate_limit_anon: str = "100/hour"
    rate_limit_enabled: bool = True
    max_request_bytes: int = 1_048_576

    page_size: int = 50
    max_page_size: int = 100

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

    worker_processes: int = 2
    worker_threads: int = 4
    embedded_worker_threads: int = 2

    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 30.0
    webhook_retry_span_seconds: float = 86_400.0
    webhook_disable_after_seconds: float = 86_400.0

    history_retention_days: int = 30

    admin_session_hours: float = 12.0
    admin_cookie_secure: bool = False

    log_level: str = "INFO"
    log_format: str = Field(default="text", pattern="^(text|json)$")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated string as well as a JSON list."""
        if isinstance(value, str) and not value.strip().startswith("["):
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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'imap2api.sqlite3').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret key, or one generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting at once must not each write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


settings = Settings()


def reload_settings(**overrides: object) -> Settings:
    """Re-read the environment into the shared ``settings`` object (used by the CLI and tests)."""
    fresh = Settings(**overrides)  # type: ignore[arg-type]
    for name in Settings.model_fields:
        setattr(settings, name, getattr(fresh, name))
    settings.__dict__.pop("resolved_secret_key", None)
    return settings
