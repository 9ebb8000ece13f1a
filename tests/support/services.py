"""Reaching the machine's PostgreSQL and Redis: skip when absent locally, fail when absent in CI."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import psycopg
import pytest
import redis

POSTGRES_ADMIN_URL = os.environ.get(
    "IMAP2API_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("IMAP2API_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def in_ci() -> bool:
    """Whether we run in CI, where every service must be present."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _answers(url: str) -> bool:
    """Whether something listens at the URL's host and port."""
    parsed = urlparse(url)
    default = {"postgresql": 5432, "redis": 6379}.get(parsed.scheme, 0)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip the test when the service is missing, or fail in CI."""
    if _answers(url):
        return
    message = f"{name} is not reachable at {url}"
    if in_ci():
        pytest.fail(message + " (required when CI=true)")
    pytest.skip(message)


def _admin_connection():  # noqa: ANN202
    """An autocommit connection to the PostgreSQL maintenance database."""
    return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)


def create_postgres_database(name: str) -> str:
    """Create an empty database and return its URL."""
    connection = _admin_connection()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    parsed = urlparse(POSTGRES_ADMIN_URL)
    return parsed._replace(path=f"/{name}").geturl()


def drop_postgres_database(name: str) -> None:
    """Drop a database created by ``create_postgres_database``."""
    connection = _admin_connection()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def redis_keys(url: str, prefix: str) -> list[str]:
    """The keys under ``prefix:`` in that Redis (SCAN, never KEYS: it may be a busy production one)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))
    finally:
        client.close()


def delete_redis_keys(url: str, prefix: str) -> None:
    """Delete the keys under ``prefix:`` and nothing else: the Redis may hold an operator's data."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()
