"""Shared fixtures: a throw-away data directory, SQLite and PostgreSQL databases, API clients.

Real services only: PostgreSQL and Redis are used when they answer (and must answer when
``CI=true``); SQLite is always used.
"""

from __future__ import annotations

import os
import secrets
import tempfile

# Settings are read at import time, so the environment is fixed before imap2api is imported.
_DATA_DIR = tempfile.mkdtemp(prefix="imap2api-tests-")
os.environ["IMAP2API_DATA_DIR"] = _DATA_DIR
os.environ.setdefault("IMAP2API_SECRET_KEY", "tests-" + secrets.token_hex(16))
os.environ.pop("IMAP2API_DATABASE_URL", None)
os.environ.pop("IMAP2API_REDIS_URL", None)
os.environ.setdefault("IMAP2API_WEBHOOK_ALLOW_PRIVATE", "true")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.support.services import (  # noqa: E402
    POSTGRES_ADMIN_URL,
    create_postgres_database,
    drop_postgres_database,
    require_service,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _use_database(url: str | None) -> None:
    """Point imap2api at a database (None: the SQLite default) and apply migrations."""
    from imap2api.config import reload_settings
    from imap2api.db import dispose_engines, migrate

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
        from imap2api.db import dispose_engines

        dispose_engines()
        drop_postgres_database(name)
        _use_database(None)


@pytest.fixture()
def client(database: str) -> Iterator:
    """An HTTP client for the whole app, with the embedded worker running."""
    from fastapi.testclient import TestClient

    from imap2api.app import create_app

    with TestClient(create_app(), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture()
def make_user(database: str):
    """Factory: create a user with a random name; returns (username, password, token)."""
    from imap2api.crud import users as crud_users
    from imap2api.db import session_scope

    def factory(*, admin: bool = False) -> tuple[str, str, str]:
        username = "user_" + secrets.token_hex(4)
        password = "pw-" + secrets.token_hex(4)
        with session_scope() as session:
            user = crud_users.create_user(session, username=username, password=password, is_admin=admin)
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
