"""Every closed set of values the service knows, as ``StrEnum``s.

The database stores the values (plain strings, so no migration follows a new member); GraphQL shows
the member names (``LAST_N``, ``EMAIL_RECEIVED``); REST and the webhook payloads show the values
(``last_n``, ``email.received``). A member compares equal to its value, so ``run.status == "queued"``
and ``SyncStatus.QUEUED == "queued"`` both hold. The docstring of each enum is its GraphQL description.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class TlsMode(StrEnum):
    """How the connection to the IMAP server is protected."""

    SSL = "ssl"  # implicit TLS (port 993)
    STARTTLS = "starttls"  # STARTTLS, required (port 143)
    NONE = "none"  # clear text, only when chosen


class SmtpSecurity(StrEnum):
    """How the connection to the SMTP server is protected."""

    SSL = "ssl"  # implicit TLS (port 465)
    STARTTLS = "starttls"  # STARTTLS, required (port 587)
    NONE = "none"  # clear text, only when chosen (a relay on the local network)


class AuthType(StrEnum):
    """How imap2api logs in to the account: with its password, or with OAuth2 tokens (XOAUTH2/OAUTHBEARER)."""

    PASSWORD = "password"
    OAUTH2 = "oauth2"


class OAuth2Provider(StrEnum):
    """Who issues an account's OAuth2 tokens: Google, Microsoft (Entra ID) or a provider the server names."""

    GOOGLE = "google"
    MICROSOFT = "microsoft"
    CUSTOM = "custom"


class SyncLimitType(StrEnum):
    """Which messages of a folder are mirrored: all, the last N, or those of the last N days/weeks/months."""

    ALL = "all"
    LAST_N = "last_n"
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"  # 30 days each


class SyncStatus(StrEnum):
    """Where a sync run is: queued, running, or finished with success or error."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"


# The runs that are not over yet: at most one per server (the partial unique index of migration 0005).
ACTIVE_SYNC_STATUSES: Final = (SyncStatus.QUEUED, SyncStatus.RUNNING)


class LastSyncStatus(StrEnum):
    """How a server's last finished sync ended (``""``: never synced). REST and GraphQL show the value."""

    NEVER = ""
    SUCCESS = "success"
    ERROR = "error"


class SyncTrigger(StrEnum):
    """Who asked for a sync run: the API or admin, the scheduler, or ``imap2api sync``."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    CLI = "cli"


class EventType(StrEnum):
    """An event a webhook can subscribe to."""

    EMAIL_RECEIVED = "email.received"
    THREAD_UPDATED = "thread.updated"
    SYNC_COMPLETED = "sync.completed"
    EMAIL_UPDATED = "email.updated"  # flags changed
    EMAIL_MOVED = "email.moved"  # to another folder of the same server, keeping its id
    EMAIL_DELETED = "email.deleted"  # gone from the mirror (expunged, or out of the sync limit)
    FOLDER_CREATED = "folder.created"
    FOLDER_DELETED = "folder.deleted"
    SERVER_INITIAL_SYNC_COMPLETED = "server.initial_sync_completed"  # once per server
    EMAIL_SENT = "email.sent"  # the SMTP server took a message of the outbox
    EMAIL_SEND_FAILED = "email.send_failed"  # a message of the outbox will not be sent
    SERVER_AUTH_FAILED = "server.auth_failed"  # the OAuth2 provider refused the tokens: connect again


# What a new webhook subscribes to when it names no events: the types webhooks had from the start.
DEFAULT_EVENT_TYPES: Final = (EventType.EMAIL_RECEIVED, EventType.THREAD_UPDATED, EventType.SYNC_COMPLETED)


# Sent by "test webhook" to that webhook only; nobody subscribes to it, so it is not an EventType.
TEST_EVENT: Final = "webhook.test"


class SendStatus(StrEnum):
    """Where a message of the outbox is: queued (waiting for its turn or a retry), sending, sent, failed
    (the SMTP server refused it for good, or the retries ran out) or cancelled (before it was sent)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SentCopy(StrEnum):
    """What became of the copy of a sent message in the server's Sent folder."""

    PENDING = "pending"  # not sent yet, or sent and the copy still to be appended
    SAVED = "saved"  # appended by imap2api to the Sent folder
    BY_PROVIDER = "by_provider"  # the provider files it itself (the server's save_sent is false)
    FAILED = "failed"  # the append failed for good (no Sent folder, refused, retries ran out)


class DeliveryStatus(StrEnum):
    """pending (waiting for its time), sending, success, retrying (a later attempt follows), failed."""

    PENDING = "pending"
    SENDING = "sending"
    SUCCESS = "success"
    RETRYING = "retrying"
    FAILED = "failed"


# The attempts still under way (waiting for their time, or being sent).
ACTIVE_DELIVERY_STATUSES: Final = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
