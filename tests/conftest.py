"""Shared fixtures: a throw-away data directory, SQLite and PostgreSQL databases, API clients.

Real services only: PostgreSQL and Redis are used when they answer (and must answer when
``CI=true``); SQLite is always used.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile

# Settings are read on first use (imap2api.config): the environment is fixed here, before any test reads one.
_DATA_DIR = tempfile.mkdtemp(prefix="imap2api-tests-")
os.environ["IMAP2API_DATA_DIR"] = _DATA_DIR
os.environ.setdefault("IMAP2API_SECRET_KEY", "tests-" + secrets.token_hex(16))
os.environ.pop("IMAP2API_DATABASE_URL", None)
os.environ.pop("IMAP2API_REDIS_URL", None)
os.environ.setdefault("IMAP2API_WEBHOOK_ALLOW_PRIVATE", "true")
os.environ["IMAP2API_SCHEDULER_ENABLED"] = "false"  # tests drive the scheduler themselves
os.environ["IMAP2API_WATCH_ENABLED"] = "false"  # push tests start a watcher of their own

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from dramatiq.middleware import TimeLimit  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import update  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from imap2api.app import create_app  # noqa: E402
from imap2api.config import reload_settings, settings  # noqa: E402
from imap2api.crud import events as crud_events  # noqa: E402
from imap2api.crud import servers as crud_servers  # noqa: E402
from imap2api.crud import sync_runs as crud_runs  # noqa: E402
from imap2api.crud import users as crud_users  # noqa: E402
from imap2api.db import dispose_engines, migrate, session_scope  # noqa: E402
from imap2api.models import Email, SyncRun, User  # noqa: E402
from imap2api.security import hash_password  # noqa: E402
from imap2api.sync.engine import run_sync  # noqa: E402
from imap2api.validation import validate_server  # noqa: E402
from imap2api.workers.broker import make_broker, use_broker  # noqa: E402
from tests.support.counts import count_mismatches  # noqa: E402
from tests.support.dovecot import DovecotServer, find_dovecot  # noqa: E402
from tests.support.services import (  # noqa: E402
    POSTGRES_ADMIN_URL,
    create_postgres_database,
    drop_postgres_database,
    require_service,
)
from tests.support.smtp import SMTP_USERS, SmtpServer  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _use_database(url: str | None) -> None:
    """Point imap2api at a database (None: the SQLite default) and apply migrations."""
    dispose_engines()
    reload_settings(database_url=url)
    migrate()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test using this runs on SQLite, then again on PostgreSQL."""
    if request.param == "sqlite":
        _use_database(None)
        yield "sqlite"
        return
    require_service("postgresql", POSTGRES_ADMIN_URL)
    name = f"imap2api_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_postgres_database(name)
    _use_database(url)
    try:
        yield "postgresql"
    finally:
        dispose_engines()
        drop_postgres_database(name)
        _use_database(None)


@pytest.fixture(autouse=True)
def broker() -> Iterator:
    """A fresh in-process broker per test, so that no job of one test reaches another's worker."""
    fresh = use_broker(make_broker(settings))
    yield fresh
    fresh.flush_all()
    fresh.close()
    _park_time_limit_thread(fresh)


def _park_time_limit_thread(broker: Any) -> None:
    """Let the broker's TimeLimit thread sleep for good: Dramatiq gives it no stop, and a thread per
    test waking every second would slow the whole suite down as it goes (over 1,700 of them)."""
    for middleware in broker.middleware:
        manager = getattr(middleware, "manager", None)
        if isinstance(middleware, TimeLimit) and manager is not None and hasattr(manager, "interval"):
            manager.interval = 1e6


@pytest.fixture()
def client(database: str) -> Iterator:
    """An HTTP client for the whole app, with the embedded worker running."""
    with TestClient(create_app(), base_url="http://testserver") as test_client:
        yield test_client
    _end_leftover_runs()


def _end_leftover_runs() -> None:
    """Finish the runs a test left queued or running (first syncs of servers at hosts that do not
    exist, mostly): else every later app's start-up re-queues them all, and they crowd its workers
    and connection pool while the next test runs."""
    with session_scope() as session:
        session.exec(
            update(SyncRun)
            .where(col(SyncRun.status).in_(["queued", "running"]))
            .values(status="error", error="left behind by an earlier test", error_code="TEST_LEFTOVER")
        )


@functools.cache
def _shared_password() -> tuple[str, str]:
    """One password for the users ``make_user`` creates, and its scrypt hash, made once a session."""
    password = "pw-" + secrets.token_hex(4)
    return password, hash_password(password)


@pytest.fixture()
def make_user(database: str):
    """Factory: create a user with a random name; returns (username, password, token)."""

    def factory(*, admin: bool = False) -> tuple[str, str, str]:
        username = "user_" + secrets.token_hex(4)
        password, password_hash = _shared_password()
        with session_scope() as session:
            # The row create_user would write, with the session's one hash: scrypt costs ~50 ms a user.
            user = User(username=username, password_hash=password_hash, is_admin=admin)
            session.add(user)
            session.flush()
            token = crud_users.create_token(session, user_id=user.id)
        return username, password, token

    return factory


@pytest.fixture()
def token(make_user) -> str:
    """A token of a fresh user."""
    return make_user()[2]


@pytest.fixture()
def auth(token: str) -> dict[str, str]:
    """Headers that authenticate as a fresh user."""
    return {"Authorization": f"Token {token}"}


@pytest.fixture(scope="session")
def dovecot() -> Iterator:
    """One real Dovecot IMAP server per test session; tests isolate themselves with fresh users."""
    if find_dovecot() is None:
        if IN_CI:
            pytest.fail("dovecot is not installed (required when CI=true)", pytrace=False)
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    with DovecotServer() as server:
        # The fixture's certificate is self-signed: trust it, keep verification on.
        os.environ["IMAP2API_IMAP_CA_FILE"] = str(server.ca_cert_path)
        settings.imap_ca_file = str(server.ca_cert_path)
        yield server


@pytest.fixture()
def user(dovecot) -> str:
    """A fresh mail user (password "secret") on the Dovecot fixture."""
    return dovecot.add_user()


class Mirror:
    """An imap2api user whose IMAP server points at a fresh Dovecot mailbox, with helpers."""

    def __init__(self, dovecot, mail_user: str, owner_id: int, token: str, server_id: int) -> None:
        self.dovecot = dovecot
        self.mail_user = mail_user
        self.owner_id = owner_id
        self.token = token
        self.server_id = server_id

    @property
    def headers(self) -> dict[str, str]:
        """Headers that authenticate as the owner."""
        return {"Authorization": f"Token {self.token}"}

    def deliver(self, raw: bytes, folder: str = "INBOX", flags: str = "", **kwargs) -> None:
        """Put a message into the mailbox (Maildir write, as a delivery agent would)."""
        self.dovecot.add_message(self.mail_user, folder, raw, flags=flags, **kwargs)

    def imap(self):
        """A logged-in IMAP client on the mailbox, to change it as a mail client would."""
        return self.dovecot.client(self.mail_user)

    def configure(self, **fields) -> None:
        """Change the server's settings directly."""
        with session_scope() as session:
            crud_servers.update_server(session, owner_id=self.owner_id, server_id=self.server_id, data=fields)

    def sync(self):
        """Run one sync in the foreground and return the finished run."""
        with session_scope() as session:
            server = crud_servers.get_server(session, owner_id=self.owner_id, server_id=self.server_id)
            run, _ = crud_runs.start_run(session, server=server, trigger="manual")
        return run_sync(run.id)

    def emails(self, **where) -> list:
        """The mirrored emails of this server, ordered by folder and UID."""
        with session_scope() as session:
            statement = select(Email).where(Email.imap_server_id == self.server_id)
            for name, value in where.items():
                statement = statement.where(getattr(Email, name) == value)
            return list(session.exec(statement.order_by(col(Email.folder), col(Email.uid))))

    def events(self, type: str | None = None) -> list[dict]:
        """The outbox events of this server, oldest first, with parsed payloads."""
        with session_scope() as session:
            rows = crud_events.list_events(
                session, owner_id=self.owner_id, type=type, server_id=self.server_id
            )
            return [{"type": row.type, "id": row.id, **crud_events.event_data(row)} for row in rows]


@pytest.fixture()
def mirror(database: str, dovecot, user: str, make_user) -> Iterator[Mirror]:
    """A fresh mailbox and an imap2api server mirroring it (plain port, STARTTLS as offered)."""
    username, _, token = make_user()
    data = validate_server(
        {
            "name": f"mailbox of {user}",
            "host": dovecot.host,
            "port": dovecot.port,
            "username": user,
            "password": "secret",
            "use_ssl": False,
        }
    )
    with session_scope() as session:
        owner = crud_users.get_user_by_username(session, username=username)
        server = crud_servers.create_server(session, owner_id=owner.id, data=data)
        owner_id, server_id = owner.id, server.id
    yield Mirror(dovecot, user, owner_id, token, server_id)
    # Whatever the test did to the mirror, the counts the database keeps still count its emails.
    assert count_mismatches() == {}


# --- SMTP server (tests/support/smtp.py) ---
# Two aiosmtpd servers per session, started on first use (a fraction of a second each). Tests take the
# function fixtures, which clear the shared server (messages and controls) and trust its certificate.


@pytest.fixture(scope="session")
def smtp_starttls() -> Iterator[SmtpServer]:
    """A submission server with required STARTTLS and AUTH for ``SMTP_USERS``, shared by the session.

    Shared state: take ``smtp_server`` instead, unless the test clears it and trusts its CA itself.
    """
    with SmtpServer(tls="starttls", users=SMTP_USERS) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_ssl() -> Iterator[SmtpServer]:
    """As ``smtp_starttls``, with implicit TLS (port 465 style); take ``smtps_server`` in tests."""
    with SmtpServer(tls="ssl", users=SMTP_USERS) as server:
        yield server


@pytest.fixture()
def smtp_server(smtp_starttls: SmtpServer) -> Iterator[SmtpServer]:
    """The STARTTLS server, cleared, its certificate trusted (with Dovecot's) for the test's duration."""
    smtp_starttls.clear()
    with smtp_starttls.trusted():
        yield smtp_starttls


@pytest.fixture()
def smtps_server(smtp_ssl: SmtpServer) -> Iterator[SmtpServer]:
    """The implicit-TLS server, cleared, its certificate trusted (with Dovecot's) for the test's duration."""
    smtp_ssl.clear()
    with smtp_ssl.trusted():
        yield smtp_ssl


# --- OAuth2 (tests/support/oauth2_server.py) ---
# One authorization server per session, a Dovecot checking its tokens (XOAUTH2/OAUTHBEARER) and an SMTP server
# taking them. Tests take ``oauth2_server`` (reset per test) and ``oauth2_smtp_server``; users of
# ``oauth2_dovecot`` are added per test, as on ``dovecot``.

from tests.support.oauth2_server import OAuth2Server  # noqa: E402

OAUTH2_CLIENT_ID = "imap2api-test"
OAUTH2_CLIENT_SECRET = "test-secret"
OAUTH2_PUBLIC_CLIENT_ID = "imap2api-public"
# fnmatch patterns: the service's callback wherever it runs (TestClient, a live server on any port).
OAUTH2_REDIRECT_URIS = [
    "http://127.0.0.1:*/oauth2/callback",
    "http://localhost:*/oauth2/callback",
    "http://testserver/oauth2/callback",
    "http://testserver/*/oauth2/callback",
]


@pytest.fixture(scope="session")
def oauth2_provider_server() -> Iterator[OAuth2Server]:
    """The session's authorization server, with a confidential and a public client; take ``oauth2_server``."""
    with OAuth2Server() as server:
        server.register_client(OAUTH2_CLIENT_ID, OAUTH2_CLIENT_SECRET, OAUTH2_REDIRECT_URIS)
        server.register_client(OAUTH2_PUBLIC_CLIENT_ID, None, OAUTH2_REDIRECT_URIS)
        yield server


@pytest.fixture()
def oauth2_server(oauth2_provider_server: OAuth2Server) -> OAuth2Server:
    """The authorization server, its tokens, codes and counters forgotten."""
    oauth2_provider_server.reset()
    return oauth2_provider_server


@pytest.fixture(scope="session")
def oauth2_dovecot(dovecot: DovecotServer, oauth2_provider_server: OAuth2Server) -> Iterator[DovecotServer]:
    """A Dovecot (TLS) taking the authorization server's access tokens as well as passwords.

    Started after ``dovecot`` (which skips or fails when Dovecot is missing), so that trusting both
    certificates here cannot be undone by ``dovecot`` starting later.
    """
    client_id, secret = oauth2_provider_server.introspection_credentials
    # Dovecot sends the URL's user and password as HTTP Basic client authentication.
    url = oauth2_provider_server.introspection_url.replace("http://", f"http://{client_id}:{secret}@", 1)
    with DovecotServer(tls=True, oauth2_introspection_url=url) as server:
        bundle = server.root / "trusted.pem"
        bundle.write_bytes(dovecot.ca_cert_path.read_bytes() + server.ca_cert_path.read_bytes())
        before, before_env = settings.imap_ca_file, os.environ.get("IMAP2API_IMAP_CA_FILE")
        os.environ["IMAP2API_IMAP_CA_FILE"] = settings.imap_ca_file = str(bundle)
        try:
            yield server
        finally:
            settings.imap_ca_file = before
            if before_env is None:
                os.environ.pop("IMAP2API_IMAP_CA_FILE", None)
            else:
                os.environ["IMAP2API_IMAP_CA_FILE"] = before_env


@pytest.fixture(scope="session")
def smtp_oauth2(oauth2_provider_server: OAuth2Server) -> Iterator[SmtpServer]:
    """A STARTTLS submission server taking the authorization server's tokens and ``SMTP_USERS``' passwords.

    Shared state: take ``oauth2_smtp_server`` instead.
    """
    check = oauth2_provider_server.username_of
    with SmtpServer(tls="starttls", users=SMTP_USERS, oauth2_check=check) as server:
        yield server


@pytest.fixture()
def oauth2_smtp_server(smtp_oauth2: SmtpServer, oauth2_server: OAuth2Server) -> Iterator[SmtpServer]:
    """The OAuth2 SMTP server, cleared, its certificate trusted for the test's duration (tokens reset too)."""
    smtp_oauth2.clear()
    with smtp_oauth2.trusted():
        yield smtp_oauth2
