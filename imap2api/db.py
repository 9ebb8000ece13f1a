"""Database engine, sessions and migrations, for SQLite (default) and PostgreSQL alike."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import SchemaItem
from sqlmodel import Session, create_engine
from starlette.concurrency import run_in_threadpool

from imap2api.config import settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_engines: dict[str, Engine] = {}
T = TypeVar("T")
P = ParamSpec("P")
# session.info key of the callables to run once the session's transaction has committed.
AFTER_COMMIT = "imap2api.after_commit"


def sql_contains(haystack: str | None, needle: str | None) -> int:
    """SQL ``imap2api_contains(haystack, needle)``: 1 when needle is in haystack, ignoring case
    (Unicode-aware, like the FTS5 trigram index; SQLite's own LIKE folds ASCII only)."""
    if haystack is None or needle is None:
        return 0
    return int(needle.lower() in haystack.lower())


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL lets readers run during a sync; busy_timeout makes writers queue instead of failing."""
    dbapi_connection.create_function("imap2api_contains", 2, sql_contains, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_private_files(database: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask, usually 0644) and
    tighten existing ones; SQLite gives its -wal and -shm files the database file's mode."""
    # O_EXCL: never open (and close) a database file that exists. Closing any descriptor of it drops
    # every POSIX lock this process holds on it, SQLite's included, and corrupts the database.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm"))):
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)


def make_engine(url: str) -> Engine:
    """Create an engine with the settings each dialect needs."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            make_private_files(Path(database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine() -> Engine:
    """The engine for the configured database URL (one per URL per process)."""
    url = settings.sqlalchemy_url
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (after a fork, or when tests switch databases)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error; then runs its after-commit hooks.

    Hooks (``imap2api.services.jobs.enqueue``) run only after a successful commit, so a job never
    reaches a worker before the rows it names, and a rolled-back transaction queues nothing.
    """
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.info.pop(AFTER_COMMIT, None)
            session.rollback()
            raise
        _run_hooks(session.info.pop(AFTER_COMMIT, []))


def _run_hooks(hooks: list[Callable[[], object]]) -> None:
    """Run every hook even when one fails (Redis down for one job must not drop the others' sends),
    then raise the first failure: the rows are committed, recovery and the scheduler re-send."""
    failure: BaseException | None = None
    for hook in hooks:
        try:
            hook()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other hooks
            failure = failure or exc
    if failure is not None:
        raise failure


def after_commit(session: Session, hook: Callable[[], object]) -> None:
    """Run ``hook`` once ``session_scope`` has committed this session (never if it rolls back)."""
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def in_session(fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn(session, *args, **kwargs)`` inside a committed session."""
    with session_scope() as session:
        return fn(session, *args, **kwargs)


async def run_db(fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a crud or service function in a worker thread with its own session (the loop never blocks)."""
    return await run_in_threadpool(in_session, fn, *args, **kwargs)


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """Autogenerate filter: the dialect-specific search index (migrations 0002, 0017) is not in the models."""
    if type_ == "column" and name == "search_indexed":
        return False
    return not (name or "").startswith(("emails_fts", "ix_emails_trgm_", "ix_emails_search_pending"))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations and the given (or configured) URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", (url or settings.sqlalchemy_url).replace("%", "%%"))
    return config


def migrate(url: str | None = None) -> None:
    """Apply every pending migration."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def pending_migrations(url: str | None = None) -> list[str]:
    """Revisions not yet applied to the database (empty when it is current)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    engine = get_engine() if url is None else make_engine(url)
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    heads = set(script.get_heads())
    if current == heads:
        return []
    return [rev.revision for rev in script.iterate_revisions(tuple(heads), tuple(current) or "base")]
