"""The ``imap2api`` command: serve, worker, migrate, createuser, user, sync, status, docs."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from imap2api import __version__
from imap2api.config import settings

if TYPE_CHECKING:
    from sqlmodel import Session

    from imap2api.errors import ValidationFailed
    from imap2api.models import User


def _setup_logging() -> None:
    """Configure logging from the settings."""
    from imap2api.logs import configure_logging

    configure_logging()


def _start_up_checks() -> None:
    """Checks of the settings that ``serve`` and ``worker`` run before anything starts."""
    from imap2api.sync.connection import TlsSettingsError, check_tls_settings

    # A bad configuration is refused before serving or consuming jobs, not found at the first sync.
    try:
        check_tls_settings()
    except TlsSettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _refusal(exc: ValidationFailed) -> click.ClickException:
    """A ValidationFailed as one line naming each field: ``password: Ensure this field has...``."""
    parts = [
        " ".join(messages) if name == "non_field_errors" else f"{name}: {' '.join(messages)}"
        for name, messages in exc.fields.items()
    ]
    return click.ClickException("; ".join(parts))


def _new_password(value: str) -> str:
    """A password typed at the prompt, refused there (and asked again) when the rule refuses it."""
    from imap2api.errors import ValidationFailed
    from imap2api.services.accounts import check_password

    try:
        check_password(value)
    except ValidationFailed as exc:
        raise click.UsageError(" ".join(" ".join(messages) for messages in exc.fields.values())) from None
    return value


def _prompt_password(label: str) -> str:
    """Ask for a password twice, hidden, until it passes the password rule."""
    password: str = click.prompt(label, hide_input=True, confirmation_prompt=True, value_proc=_new_password)
    return password


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imap2api")
def main() -> None:
    """imap2api: mirror IMAP mailboxes into SQL and serve them over GraphQL and REST.

    Settings come from IMAP2API_* environment variables (see the README).
    """


@main.command(short_help="Run the API server (and the worker when embedded).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations at start-up.")
def serve(host: str, port: int, no_migrate: bool) -> None:
    """Run the API server (and, without IMAP2API_REDIS_URL, an in-process worker)."""
    from imap2api.app import create_app
    from imap2api.db import migrate
    from imap2api.serving import run_server

    _setup_logging()
    _start_up_checks()
    if not no_migrate:
        migrate()
    mode = "embedded (in-process worker)" if settings.embedded else "Redis (run `imap2api worker`)"
    click.echo(f"imap2api {__version__} on http://{host}:{port}/ — queue: {mode}", err=True)
    run_server(create_app(), host=host, port=port)


@main.command(short_help="Run worker processes and the scheduler (Redis).")
@click.option("--processes", type=int, default=None, help="Worker processes [IMAP2API_WORKER_PROCESSES].")
@click.option(
    "--threads",
    type=int,
    default=None,
    help="Threads per process for webhooks and the search index [IMAP2API_WORKER_THREADS].",
)
def worker(processes: int | None, threads: int | None) -> None:
    """Run worker processes against Redis, and the sync scheduler (IMAP2API_REDIS_URL must be set).

    Each process runs the lanes of imap2api.workers.lanes: requested syncs, scheduled syncs and other
    jobs, each on threads of its own.
    """
    import signal
    import subprocess
    import threading
    import time

    if not settings.redis_url:
        raise click.UsageError(
            "IMAP2API_REDIS_URL is not set. `imap2api worker` consumes jobs from Redis; "
            "without Redis, `imap2api serve` runs the worker in-process."
        )
    _setup_logging()
    _start_up_checks()
    argv = [
        sys.executable,
        "-m",
        "imap2api.workers.process",
        "--threads",
        str(threads or settings.worker_threads),
    ]
    children = [subprocess.Popen(argv) for _ in range(processes or settings.worker_processes)]
    stopping = threading.Event()

    def stop(number: int, _frame: object = None) -> None:
        # Forwarded to every process, which lets its running jobs finish (SHUTDOWN_TIMEOUT_SECONDS).
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    scheduler = None
    if settings.scheduler_enabled:
        from imap2api.workers.scheduler import Scheduler

        scheduler = Scheduler()
        scheduler.start()
    first_exit = None
    while any(child.poll() is None for child in children):
        ended = [child.returncode for child in children if child.returncode is not None]
        if ended and first_exit is None and not stopping.is_set():
            # A process ended on its own (it crashed): stop the rest, so that a supervisor restarts all.
            first_exit = ended[0] or 1
            stop(signal.SIGTERM)
        time.sleep(0.5)
    if scheduler is not None:
        scheduler.stop()
    sys.exit(first_exit or next((child.returncode for child in children if child.returncode), 0))


@main.command("migrate", short_help="Apply pending database migrations.")
def migrate_command() -> None:
    """Apply pending database migrations."""
    from imap2api.db import migrate

    _setup_logging()
    migrate()
    click.echo("database is up to date")


@main.command(short_help="Create a user who can log in to the API.")
@click.argument("username")
@click.option("--password", help="The password, at least 8 characters (prompted for when left out).")
@click.option("--admin", is_flag=True, help="Give the user access to the admin interface.")
def createuser(username: str, password: str | None, admin: bool) -> None:
    """Create a user who can log in to the API (and, with --admin, to /admin)."""
    from imap2api.db import in_session, migrate
    from imap2api.errors import ValidationFailed
    from imap2api.services import accounts
    from imap2api.services.principal import Principal

    if password is None:
        password = _prompt_password("Password")
    migrate()
    try:
        user = in_session(
            accounts.create_user, Principal.system(), username=username, password=password, is_admin=admin
        )
    except ValidationFailed as exc:
        raise _refusal(exc) from None
    click.echo(f"created {'admin ' if admin else ''}user {user.username}")


@main.group(short_help="Change an existing user: password, admin rights.")
def user() -> None:
    """Change an existing user: set their password, make them admin or take it away."""


@user.command("set-password", short_help="Set a user's password (prompted for twice).")
@click.argument("username")
@click.option("--password", help="The new password, at least 8 characters (prompted for when left out).")
@click.option("--revoke-tokens", is_flag=True, help="Also revoke every API token of the user.")
def set_password(username: str, password: str | None, revoke_tokens: bool) -> None:
    """Set USERNAME's password; their admin sessions end, their API tokens go on unless revoked."""
    from imap2api.db import in_session, migrate
    from imap2api.errors import NotFound, ValidationFailed
    from imap2api.services import accounts
    from imap2api.services.principal import Principal

    migrate()
    # Known before the prompt: nobody should type a new password twice for a misspelt name.
    _existing_user(username)
    if password is None:
        password = _prompt_password("New password")

    def change(session: Session) -> tuple[User, int]:
        # One transaction: a refused password revokes nothing.
        changed = accounts.set_password(session, Principal.system(), username=username, password=password)
        if not revoke_tokens:
            return changed, 0
        return changed, accounts.revoke_all_tokens(session, Principal.system(), [changed.id or 0])

    try:
        changed, revoked = in_session(change)
    except NotFound:
        raise click.ClickException(f"no user named {username!r}") from None
    except ValidationFailed as exc:
        raise _refusal(exc) from None
    click.echo(
        f"password of {changed.username} changed" + (f"; {revoked} token(s) revoked" if revoke_tokens else "")
    )


@user.command("make-admin", short_help="Give a user admin rights (--revoke: take them).")
@click.argument("username")
@click.option("--revoke", is_flag=True, help="Take the admin rights away instead.")
def make_admin(username: str, revoke: bool) -> None:
    """Let USERNAME log in to /admin, or with --revoke no longer (their admin sessions end)."""
    from imap2api.db import in_session, migrate
    from imap2api.errors import NotFound, ValidationFailed
    from imap2api.services import accounts
    from imap2api.services.principal import Principal

    migrate()
    try:
        changed = in_session(accounts.set_admin, Principal.system(), username=username, is_admin=not revoke)
    except NotFound:
        raise click.ClickException(f"no user named {username!r}") from None
    except ValidationFailed as exc:
        raise _refusal(exc) from None
    if revoke:
        click.echo(f"{username} is no longer an admin" if changed else f"{username} was not an admin")
    else:
        click.echo(f"{username} is now an admin" if changed else f"{username} was already an admin")


def _existing_user(username: str) -> None:
    """Exit with a one-line error unless a user of this name exists."""
    from imap2api.crud import users as crud_users
    from imap2api.db import session_scope

    with session_scope() as session:
        if crud_users.get_user_by_username(session, username=username) is None:
            raise click.ClickException(f"no user named {username!r}")


@main.command(short_help="Sync one IMAP server now, in the foreground.")
@click.argument("server_id", type=int)
def sync(server_id: int) -> None:
    """Sync one IMAP server now, in the foreground, with a progress bar.

    A failed sync prints one line with its error code and exits with status 1.
    """
    from imap2api.crud import sync_runs as crud_runs
    from imap2api.db import in_session, migrate
    from imap2api.errors import NotFound
    from imap2api.services import sync as sync_service
    from imap2api.services.principal import Principal
    from imap2api.sync.engine import LeaseBusy, run_sync
    from imap2api.sync.lease import ServerGone

    _setup_logging()
    migrate()
    try:
        server, run = in_session(sync_service.start_here, Principal.system(), server_id)
    except NotFound:
        raise click.ClickException(f"no IMAP server with id {server_id}") from None
    with click.progressbar(length=1, label=f"syncing {server.name}", show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        outcome = _RunOutcomeFilter(run.id or 0)
        engine_log = logging.getLogger("imap2api.sync")
        engine_log.addFilter(outcome)
        try:
            finished = run_sync(run.id or 0, on_progress=progress)
        except LeaseBusy as exc:
            raise click.ClickException(f"{exc}; try again when it is done") from None
        except ServerGone as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine_log.removeFilter(outcome)
    if finished.status in crud_runs.ACTIVE:
        raise click.ClickException("this sync stalled past its lease and another worker took it over")
    if finished.status != "success":
        hint = " (IMAP2API_LOG_LEVEL=DEBUG shows the traceback)" if outcome.hid_traceback else ""
        raise click.ClickException(f"sync failed [{finished.error_code}]: {finished.error}{hint}")
    click.echo(
        f"done: {finished.messages_new} new, {finished.messages_updated} updated, "
        f"{finished.messages_deleted} removed in {finished.folders_synced} folders"
    )
    from imap2api.workers.search_index import index_all_pending

    indexed = index_all_pending()
    if indexed:
        click.echo(f"search index: {indexed} emails added")


class _RunOutcomeFilter(logging.Filter):
    """Drops the engine's own lines on how one run ended ("sync run N of server M failed: ..."):
    ``imap2api sync`` reports the outcome itself, once. At DEBUG level nothing is dropped."""

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.hid_traceback = False

    def filter(self, record: logging.LogRecord) -> bool:
        """False for this run's outcome records (unless logging at DEBUG)."""
        if settings.log_level.upper() == "DEBUG":
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        outcome = isinstance(record.msg, str) and record.msg.startswith("sync run %s of server %s")
        if not (outcome and args and args[0] == self.run_id and record.levelno >= logging.WARNING):
            return True
        self.hid_traceback = self.hid_traceback or record.exc_info is not None
        return False


@main.command(short_help="Print every IMAP server with its last sync and error.")
def status() -> None:
    """Print every IMAP server with its last sync, lag, email count and last error."""
    from imap2api.crud import status as crud_status
    from imap2api.db import session_scope
    from imap2api.models import utcnow

    with session_scope() as session:
        rows = crud_status.server_statuses(session)
    now = utcnow()
    table = [("ID", "OWNER", "NAME", "HOST", "LAST SYNC", "LAG", "STATUS", "EMAILS", "LAST ERROR")]
    for row in rows:
        lag = _duration((now - row.last_sync).total_seconds()) if row.last_sync else "never"
        table.append(
            (
                str(row.id),
                row.owner,
                row.name,
                row.host,
                row.last_sync.strftime("%Y-%m-%d %H:%M:%SZ") if row.last_sync else "-",
                lag,
                "running" if row.running else (row.last_status or "-"),
                str(row.emails),
                (row.last_error[:60] + "…") if len(row.last_error) > 60 else (row.last_error or "-"),
            )
        )
    widths = [max(len(line[index]) for line in table) for index in range(len(table[0]))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    if not rows:
        click.echo("(no IMAP servers yet)")


@main.command(short_help="Write the GraphQL and REST references into a directory.")
@click.argument("directory", type=click.Path(file_okay=False), default="docs")
def docs(directory: str) -> None:
    """Write the GraphQL SDL (schema.graphql) and the REST reference (rest.md) into DIRECTORY."""
    from pathlib import Path

    from imap2api.reference import write_reference

    for path in write_reference(Path(directory)):
        click.echo(f"wrote {path}")


def _duration(seconds: float) -> str:
    """``3725`` → ``1h02m``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig()
    main()
