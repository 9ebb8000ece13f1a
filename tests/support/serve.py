"""Running `imap2api serve` as a real process: a fresh data directory, a free port, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(root: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """Start `imap2api serve` on SQLite in ``root`` with ``IMAP2API_<NAME>`` settings, logging to
    ``root/serve.log`` (appended: a restarted server keeps one log); returns it once it answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
    env.update(
        {
            "IMAP2API_DATA_DIR": str(root / "data"),
            "IMAP2API_SCHEDULER_ENABLED": "false",
            **{f"IMAP2API_{name.upper()}": value for name, value in settings.items()},
        }
    )
    with (root / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "imap2api.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"imap2api serve exited: {(root / 'serve.log').read_text()}")
        time.sleep(0.1)
    return process, url


def add_imap_server(url: str, headers: dict[str, str], dovecot: Any, mail_user: str, name: str = "") -> int:
    """Add a mailbox of the test Dovecot over REST (plain port, STARTTLS as offered); its id."""
    answer = httpx.post(
        f"{url}/api/imap-servers/",
        headers=headers,
        json={
            "name": name or mail_user,
            "host": dovecot.host,
            "port": dovecot.port,
            "username": mail_user,
            "password": "secret",
            "use_ssl": False,
        },
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def kill(process: subprocess.Popen, signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to the server's process group and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signum)
    process.wait()


@contextmanager
def served(root: Path, **settings: str) -> Iterator[str]:
    """`imap2api serve` on SQLite in ``root`` with ``IMAP2API_<NAME>`` settings; yields its base URL."""
    process, url = start_serve(root, **settings)
    try:
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                kill(process)
