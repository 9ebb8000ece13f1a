"""The ``imap2api`` command: serve, worker, migrate, createuser, sync."""

from __future__ import annotations

import logging
import sys

import click

from imap2api import __version__
from imap2api.config import settings


def _setup_logging() -> None:
    """Configure logging from the settings."""
    from imap2api.logs import configure_logging

    configure_logging()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imap2api")
def main() -> None:
    """imap2api: mirror IMAP mailboxes into SQL and serve them over GraphQL and REST.

    Settings come from IMAP2API_* environment variables (see the README).
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations at start-up.")
def serve(host: str, port: int, no_migrate: bool) -> None:
    """Run the API server (and, without IMAP2API_REDIS_URL, an in-process worker)."""
    from imap2api.app import create_app
    from imap2api.db import migrate
    from imap2api.serving import run_server

    _setup_logging()
    if not no_migrate:
        migrate()
    mode = "embedded (in-process worker)" if settings.embedded else "Redis (run `imap2api worker`)"
    click.echo(f"imap2api {__version__} on http://{host}:{port}/ — queue: {mode}", err=True)
    run_server(create_app(), host=host, port=port)


@main.command()
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


@main.command("migrate")
def migrate_command() -> None:
    """Apply pending database migrations."""
    from imap2api.db import migrate

    _setup_logging()
    migrate()
    click.echo("database is up to date")


@main.command()
@click.argument("username")
@click.option("--password", help="The password (prompted for when left out).")
@click.option("--admin", is_flag=True, help="Give the user access to the admin interface.")
def createuser(username: str, password: str | None, admin: bool) -> None:
    """Create a user who can log in to the API."""
    from imap2api.db import in_session, migrate
    from imap2api.errors import ValidationFailed
    from imap2api.services import accounts
    from imap2api.services.principal import Principal

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.BadParameter("the password may not be blank", param_hint="--password")
    migrate()
    try:
        user = in_session(
            accounts.create_user, Principal.system(), username=username, password=password, is_admin=admin
        )
    except ValidationFailed as exc:
        raise click.ClickException(" ".join(" ".join(messages) for messages in exc.fields.values())) from None
    click.echo(f"created {'admin ' if admin else ''}user {user.username}")


@main.command()
@click.argument("server_id", type=int)
def sync(server_id: int) -> None:
    """Sync one IMAP server now, in the foreground, with a progress bar."""
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

        try:
            finished = run_sync(run.id or 0, on_progress=progress)
        except LeaseBusy as exc:
            raise click.ClickException(f"{exc}; try again when it is done") from None
        except ServerGone as exc:
            raise click.ClickException(str(exc)) from None
    if finished.status in crud_runs.ACTIVE:
        raise click.ClickException("this sync stalled past its lease and another worker took it over")
    if finished.status != "success":
        raise click.ClickException(f"sync failed [{finished.error_code}]: {finished.error}")
    click.echo(
        f"done: {finished.messages_new} new, {finished.messages_updated} updated, "
        f"{finished.messages_deleted} removed in {finished.folders_synced} folders"
    )
    from imap2api.workers.search_index import index_all_pending

    indexed = index_all_pending()
    if indexed:
        click.echo(f"search index: {indexed} emails added")


@main.command()
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


@main.command()
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
