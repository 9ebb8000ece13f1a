"""Push benchmark: how soon new mail reaches a webhook and a GraphQL subscription, against bare IDLE.

Run ``python -m bench.push [--messages 200] [--accounts 1000] [--database sqlite|postgresql]
[--only latency|accounts]``. Everything is throw-away: Dovecot in a temp dir (tests/support/dovecot.py,
clear text), a real ``imap2api serve`` subprocess (embedded: in-process worker) on SQLite in a temp
dir or on a fresh PostgreSQL database, dropped at the end.

1. ARRIVAL LATENCY, per folder (INBOX, and Archive, which NOTIFY hears without selecting it): one
   mailbox synced once over REST, a webhook for ``email.received`` to a loopback receiver, a GraphQL
   ``emailChanges`` subscription (graphql-transport-ws), and the floor: a bare imapclient IDLE on the
   folder, in the same run. Once the watch says NOTIFY (and probe messages came through), N messages
   are APPENDed one at a time, each waiting for the three listeners. t0 is when APPEND's tagged OK
   has been read; each latency is the time from t0 until the listener had it (the IDLE ``EXISTS``,
   the webhook POST, the subscription frame), so the floor can be slightly negative.
2. MANY ACCOUNTS: N Dovecot users with one message each, N servers first synced for real in this
   process (run_sync, like bench.sync), then a dedicated ``imap2api serve`` watching them all: its
   resident memory (VmRSS) before and after all are watched, per account; the time from watching
   being possible (the servers made active) until every watch_status says how it listens; its
   threads; and the arrival latency of messages APPENDed to random accounts meanwhile, each against
   a bare IDLE opened on that account just before.

Targets (the issue's): webhook and subscription p50 ≤ floor p50 + 0.3 s, p95 ≤ floor p95 + 1 s;
≤ 0.5 MB resident memory per watched account. Progress goes to stderr, the figures to stdout. The
exit status is 0 whatever the numbers.

Results on the 2-core dev machine: see bench/README.md, "python -m bench.push".
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from imapclient import IMAPClient

# Targets (see bench/README.md).
TARGET_P50_OVER_FLOOR = 0.3  # seconds a webhook / subscription p50 may exceed the IDLE floor's p50
TARGET_P95_OVER_FLOOR = 1.0  # likewise for p95
TARGET_MB_PER_ACCOUNT = 0.5  # resident memory per watched account, at most

MB = 1_000_000
PASSWORD = "secret"
API_USER, API_PASSWORD = "bench", "bench-password-1"
FOLDERS = ("Archive", "INBOX")  # Archive first: measured before the list index log rotates
PROBES = 3  # per folder, before the measured messages: the first deliveries warm up every path
SERVE_STOP_SECONDS = 60.0
SLOW_SECONDS = 5.0  # a message slower than this is said at once (stderr)
# In the main series the bare NOTIFY client is waited for this long after the others at most (it
# goes at Dovecot's 30 s fallback once the list index log rotated); the rotation series waits it out.
NOTIFY_GRACE = 2.0

# Dovecot 2.3 limits for thousands of simultaneous connections (up to WATCH_MAX_CONNECTIONS, 4, per
# account; merged into the rendered config's own service blocks). Without inotify
# (fs.inotify.max_user_instances is per uid, 128 by default, and every imap process of the bench's
# Dovecots runs as one uid) a session checks its mailbox every mailbox_idle_check_interval instead
# of at once: 1 s here rather than the default 30 s.
DOVECOT_LIMITS = """
default_process_limit = 5000
default_client_limit = 10000
mail_max_userip_connections = 5000
mailbox_idle_check_interval = 1 secs
service imap {
  process_limit = 5000
}
service imap-login {
  process_limit = 100
  service_count = 0
  client_limit = 1000
}
"""
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")

SUBSCRIPTION = "subscription { emailChanges(types: [EMAIL_RECEIVED]) { type imapServer folder payload } }"


def say(text: str) -> None:
    """Progress, not results."""
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def wait_until(what: str, check: Callable[[], Any], seconds: float, every: float = 0.1) -> Any:
    """``check()`` once it is truthy; TimeoutError naming ``what`` if it never is."""
    ends = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > ends:
            raise TimeoutError(f"{what}: not within {seconds:g} s")
        time.sleep(every)


def message(subject: str) -> bytes:
    """A small message with this subject."""
    from tests.support.messages import make_message

    return make_message(subject=subject, body=f"{subject}\n\nA message of the push benchmark.\n")


# ------------------------------------------------------------------------------------------------
# The listeners: bare IDLE (the floor), the webhook receiver, the GraphQL subscription
# ------------------------------------------------------------------------------------------------


class ImapListener(threading.Thread):
    """A bare imapclient connection in IDLE: when it heard of each folder (``heard`` picks them out)."""

    def __init__(self, client: IMAPClient, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.client = client
        self.client.idle()  # returns once the server said "+ idling": listening from here on
        self.times: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._halt = threading.Event()
        self.start()

    def heard(self, responses: list[Any]) -> set[str]:
        """The folders a batch of responses announces news in."""
        raise NotImplementedError

    def run(self) -> None:
        """Read IDLE responses until stopped."""
        try:
            while not self._halt.is_set():
                responses = self.client.idle_check(timeout=0.5)
                now = time.time()
                folders = self.heard(responses)
                if folders:
                    with self._cond:
                        self.times += [(now, folder) for folder in folders]
                        self._cond.notify_all()
        except Exception as exc:  # noqa: BLE001 - said, and the messages it misses show it
            if not self._halt.is_set():
                say(f"  {self.name} ended: {type(exc).__name__}: {exc}")

    def wait_after(self, since: float, deadline: float, folder: str) -> float | None:
        """The first news of ``folder`` heard after ``since`` (None if none by ``deadline``)."""
        with self._cond:
            while True:
                found = next((at for at, name in self.times if at > since and name == folder), None)
                if found is not None or time.time() >= deadline:
                    return found
                self._cond.wait(min(0.5, max(0.0, deadline - time.time())))

    def close(self) -> None:
        """Stop listening and log out."""
        self._halt.set()
        self.join(2)
        with contextlib.suppress(Exception):
            self.client.idle_done()
        with contextlib.suppress(Exception):
            self.client.logout()
        with contextlib.suppress(Exception):
            self.client.shutdown()


class IdleFloor(ImapListener):
    """The floor: a bare IDLE on one folder, hearing its EXISTS responses."""

    def __init__(self, dovecot: Any, user: str, folder: str) -> None:
        self.folder = folder
        client = dovecot.client(user)
        client.select_folder(folder, readonly=True)
        super().__init__(client, f"idle-floor-{user}-{folder}")

    def heard(self, responses: list[Any]) -> set[str]:
        """The folder, when an EXISTS came."""
        exists = any(len(item) >= 2 and item[1] == b"EXISTS" for item in responses)
        return {self.folder} if exists else set()


class NotifyFloor(ImapListener):
    """A bare NOTIFY, set as imap2api's watch sets it: when Dovecot announced each folder (STATUS)."""

    def __init__(self, dovecot: Any, user: str) -> None:
        from imap2api.sync.imap import notify_set

        client = dovecot.client(user)
        if not notify_set(client):
            raise RuntimeError("NOTIFY SET refused")
        super().__init__(client, f"notify-floor-{user}")

    def heard(self, responses: list[Any]) -> set[str]:
        """The folders of the STATUS responses."""
        from imap2api.watch.notices import read_responses

        return set(read_responses(responses, selected=None).folders)


class Subscription(threading.Thread):
    """A graphql-transport-ws ``emailChanges`` subscription: when each subject arrived."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(name="ws-subscription", daemon=True)
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            connect(url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"])
        )
        self.ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Token {token}"}}))
        answer = json.loads(self.ws.recv(timeout=10))
        if answer.get("type") != "connection_ack":
            raise RuntimeError(f"subscription refused: {answer}")
        self.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        self.seen: dict[str, float] = {}
        self.errors: list[Any] = []
        self._cond = threading.Condition()
        self._halt = threading.Event()
        self.start()

    def run(self) -> None:
        """Record every frame's subject with the time it came."""
        try:
            while not self._halt.is_set():
                try:
                    raw = self.ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                now = time.time()
                frame = json.loads(raw)
                if frame.get("type") == "ping":
                    self.ws.send(json.dumps({"type": "pong"}))
                    continue
                if frame.get("type") != "next":
                    self.errors.append(frame)
                    continue
                change = (frame["payload"].get("data") or {}).get("emailChanges") or {}
                subject = (change.get("payload") or {}).get("subject")
                if subject is None:
                    self.errors.append(frame)
                    continue
                with self._cond:
                    self.seen.setdefault(subject, now)
                    self._cond.notify_all()
        except Exception as exc:  # noqa: BLE001 - said, and the messages it misses show it
            if not self._halt.is_set():
                say(f"  subscription ended: {type(exc).__name__}: {exc}")

    def wait(self, subject: str, deadline: float) -> float | None:
        """When the subject arrived (None if not by ``deadline``)."""
        with self._cond:
            while subject not in self.seen and time.time() < deadline:
                self._cond.wait(min(0.5, max(0.0, deadline - time.time())))
            return self.seen.get(subject)

    def close(self) -> None:
        """Unsubscribe and close."""
        self._halt.set()
        self.join(2)
        with contextlib.suppress(Exception):
            self._stack.close()


def rotated_logs(dovecot: Any, user: str, folder: str) -> list[str]:
    """The index logs Dovecot's NOTIFY watches for ``folder`` that have rotated (a ``.log.2`` beside
    them): the mailbox list index log, and the folder's own transaction log."""
    maildir = dovecot.maildir_path(user, folder)
    logs = [dovecot.home(user) / "Maildir" / "dovecot.list.index.log", maildir / "dovecot.index.log"]
    return [path.name for path in logs if path.with_name(path.name + ".2").exists()]


def hook_time(receiver: Any, subject: str, deadline: float) -> float | None:
    """When the receiver got the email.received POST naming ``subject`` (None if not by ``deadline``)."""
    needle = json.dumps(subject).encode()

    def found(requests: list[Any]) -> bool:
        return any(needle in request.body for request in requests)

    try:
        requests = receiver.wait_for(found, timeout=max(0.0, deadline - time.time()))
    except AssertionError:
        return None
    return next(request.at for request in requests if needle in request.body)


@dataclass
class Sample:
    """One APPENDed message: when it was sent and acknowledged, and when each listener had it."""

    label: str
    subject: str
    sent: float
    ok: float
    floor: float | None
    webhook: float | None
    ws: float | None
    notify: float | None = None
    rotated: bool = False  # sent after an index log NOTIFY depends on had rotated (see rotated_logs)

    def missed(self) -> list[str]:
        """The listeners that did not have it in time."""
        names = [("floor", self.floor), ("webhook", self.webhook), ("subscription", self.ws)]
        return [name for name, at in names if at is None]

    def latency(self, which: str) -> float | None:
        """Seconds from APPEND's OK to the listener ``which`` (floor, webhook, ws, notify)."""
        at = getattr(self, which)
        return None if at is None else at - self.ok


def append_and_wait(
    appender: IMAPClient,
    folder: str,
    subject: str,
    floor: IdleFloor,
    receiver: Any,
    subscription: Subscription,
    timeout: float,
    label: str,
    notify: NotifyFloor | None = None,
    notify_grace: float | None = None,
) -> Sample:
    """APPEND one message and wait (up to ``timeout``) until every listener had it.

    The bare NOTIFY client is waited for at most ``notify_grace`` seconds after the others (None:
    the whole timeout): once Dovecot's list index log rotated it hears only every 30 s, and the
    series would otherwise go at its pace, not imap2api's.
    """
    raw = message(subject)
    sent = time.time()
    appender.append(folder, raw)
    ok = time.time()
    deadline = ok + timeout
    heard = floor.wait_after(sent, deadline, folder)
    hooked = hook_time(receiver, subject, deadline)
    framed = subscription.wait(subject, deadline)
    notified = None
    if notify is not None:
        others = max((at for at in (heard, hooked, framed) if at is not None), default=time.time())
        cap = deadline if notify_grace is None else min(deadline, max(others, time.time()) + notify_grace)
        notified = notify.wait_after(sent, cap, folder)
    return Sample(label, subject, sent, ok, heard, hooked, framed, notified)


# ------------------------------------------------------------------------------------------------
# imap2api as a subprocess, over HTTP, and its database read directly
# ------------------------------------------------------------------------------------------------


class Serve:
    """A real ``imap2api serve`` (embedded mode) in ``root``, stopped on close (or at exit)."""

    def __init__(self, root: Path, **settings: str) -> None:
        from tests.support.serve import start_serve

        self.root = root
        self.settings = settings
        self.process, self.url = start_serve(root, **settings)
        atexit.register(self.close)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def env(self) -> dict[str, str]:
        """The environment of the CLI commands for the same database."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
        env["IMAP2API_DATA_DIR"] = str(self.root / "data")
        env.update({f"IMAP2API_{name.upper()}": value for name, value in self.settings.items()})
        return env

    def cli(self, *args: str) -> None:
        """Run ``imap2api <args>`` against the same database."""
        subprocess.run(
            [sys.executable, "-m", "imap2api.cli", *args], env=self.env(), check=True, capture_output=True
        )

    def status(self) -> dict[str, int]:
        """VmRSS, VmHWM (bytes) and Threads of the process, from /proc."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                found[name] = int(value)
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, *, quiet: float = 0.10, window: float = 2.0, seconds: float = 180.0) -> float:
        """Wait until the process uses less than ``quiet`` of a core over ``window`` s; the wait."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            before = self.cpu_seconds()
            time.sleep(window)
            if (self.cpu_seconds() - before) / window < quiet:
                break
        return time.monotonic() - started

    def log(self) -> str:
        """The server's log so far."""
        return (self.root / "serve.log").read_text(errors="replace")

    def close(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        atexit.unregister(self.close)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=SERVE_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Api:
    """The REST calls the bench makes, as the bench user."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60)
        answer = self.http.post("/api-token-auth/", json={"username": API_USER, "password": API_PASSWORD})
        answer.raise_for_status()
        self.token = answer.json()["token"]
        self.http.headers["Authorization"] = f"Token {self.token}"

    def add_server(self, dovecot: Any, user: str) -> int:
        """A new IMAP server for the mailbox (clear text)."""
        answer = self.http.post(
            "/api/imap-servers/",
            json={
                "name": f"push bench {user}",
                "host": dovecot.host,
                "port": dovecot.port,
                "username": user,
                "password": PASSWORD,
                "tls_mode": "none",
            },
        )
        answer.raise_for_status()
        return int(answer.json()["id"])

    def sync(self, server_id: int) -> dict[str, Any]:
        """Sync the server now (the request waits for the run)."""
        answer = self.http.post(f"/api/imap-servers/{server_id}/sync/", timeout=300)
        answer.raise_for_status()
        return dict(answer.json())

    def webhook(self, url: str) -> None:
        """A webhook for email.received to ``url``."""
        answer = self.http.post("/api/webhooks/", json={"url": url, "events": ["email.received"]})
        answer.raise_for_status()

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


class Database:
    """Plain SQL on imap2api's database, from outside the server process."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = create_engine(url, poolclass=NullPool, connect_args=args)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Every row of a query."""
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def execute(self, sql: str, **params: Any) -> None:
        """A write, committed."""
        from sqlalchemy import text

        with self.engine.begin() as connection:
            connection.execute(text(sql), params)

    def close(self) -> None:
        """Drop the connections."""
        self.engine.dispose()


def epoch(value: Any) -> float | None:
    """A timestamp column (SQLite text in UTC, or a datetime) as seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


@contextlib.contextmanager
def database(kind: str, root: Path, label: str) -> Iterator[tuple[str | None, str]]:
    """(the IMAP2API_DATABASE_URL to set or None, the SQLAlchemy URL to read) of a fresh database."""
    if kind == "sqlite":
        yield None, f"sqlite:///{root / 'data' / 'imap2api.sqlite3'}"
        return
    from tests.support.services import create_postgres_database, drop_postgres_database

    name = f"imap2api_bench_push_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_postgres_database(name)
    try:
        yield url, url.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with contextlib.suppress(Exception):
            drop_postgres_database(name)


def serve_settings(database_url: str | None, secret_key: str, **extra: str) -> dict[str, str]:
    """The IMAP2API_* settings of a bench server."""
    settings = {
        "secret_key": secret_key,
        "webhook_allow_private": "true",
        "rate_limit_enabled": "false",
        "log_level": "INFO",
        **extra,
    }
    if database_url:
        settings["database_url"] = database_url
    return settings


PUSH_LOG = re.compile(r"push sync of server \d+: (\d+) new, \d+ updated, \d+ deleted in ([0-9.]+) s")


class Watchdog:
    """Says which listener missed a message or was slow, and stops a series after ``limit`` such in a row."""

    def __init__(self, db: Database, serve: Serve, limit: int = 5) -> None:
        self.db, self.serve, self.limit = db, serve, limit
        self.in_a_row = 0
        self.stopped = ""

    def check(self, sample: Sample) -> bool:
        """False once ``limit`` messages in a row were missed or slow: the series should stop."""
        missed = sample.missed()
        slow = [name for name in ("webhook", "ws") if (sample.latency(name) or 0) > SLOW_SECONDS]
        if not missed and not slow:
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        statuses = sorted({row[0] for row in self.db.rows("SELECT watch_status FROM imap_servers")})
        if missed:
            say(f"  {sample.subject!r} missed by {', '.join(missed)}; watch {statuses}")
        else:
            late = ", ".join(f"{name} {sample.latency(name):.1f} s" for name in slow)
            floors = ", ".join(
                f"{name} {value:.1f} s"
                for name in ("floor", "notify")
                if (value := sample.latency(name)) is not None
            )
            say(f"  {sample.subject!r} slow: {late} ({floors})")
        if self.in_a_row >= self.limit:
            self.stopped = (
                f"stopped after {self.limit} messages in a row missed or slower than {SLOW_SECONDS:g} s"
            )
            return False
        return True


def dovecot_warnings(dovecot: Any) -> list[str]:
    """Dovecot's warnings and errors, counted by kind (its process ids and users left out)."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in dovecot.log_path.read_text(errors="replace").splitlines():
            if ": Warning: " in line or ": Error: " in line or ": Fatal: " in line:
                kind = re.sub(r"\d+", "N", line.split(": ", 1)[1].split("): ", 1)[-1])[:140]
                counts[kind] = counts.get(kind, 0) + 1
    return [f"  Dovecot: {count} × {kind}" for kind, count in sorted(counts.items(), key=lambda i: -i[1])[:5]]


def push_sync_seconds(log: str) -> list[float]:
    """The durations of the push syncs that did something, from the server's log."""
    return [float(match.group(2)) for match in PUSH_LOG.finditer(log)]


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------


def latency_lines(
    title: str, samples: list[Sample], timeout: float, notify_grace: float | None = NOTIFY_GRACE
) -> list[str]:
    """p50/p95 of floor, webhook and subscription, the differences and the verdicts."""
    lines = [title]
    figures: dict[str, tuple[float, float, int]] = {}
    listeners = [("floor", "floor (bare IDLE)"), ("webhook", "webhook"), ("ws", "subscription")]
    if any(s.notify is not None for s in samples):
        listeners.insert(1, ("notify", "bare NOTIFY (info)"))
    for which, name in listeners:
        values = [s.latency(which) for s in samples]
        missed = sum(1 for v in values if v is None)
        got = [timeout if v is None else v for v in values]  # a lost one counts as the timeout
        figures[which] = (percentile(got, 50), percentile(got, 95), missed)
        # The bare NOTIFY client is waited for a little past the others only (NOTIFY_GRACE).
        within = (
            f"{notify_grace:g} s past the others" if which == "notify" and notify_grace else f"{timeout:g} s"
        )
        lost = f"   {missed} not within {within}" if missed else ""
        lines.append(f"    {name:<22}p50 {figures[which][0]:7.3f} s   p95 {figures[which][1]:7.3f} s{lost}")
    floor50, floor95, _ = figures["floor"]
    for which, name in (("webhook", "webhook"), ("ws", "subscription")):
        p50, p95, _ = figures[which]
        lines.append(
            f"    {name + ' − floor':<22}p50 {p50 - floor50:+7.3f} s   p95 {p95 - floor95:+7.3f} s   "
            f"p50 ≤ floor + {TARGET_P50_OVER_FLOOR:g} s {verdict(p50 <= floor50 + TARGET_P50_OVER_FLOOR)}   "
            f"p95 ≤ floor + {TARGET_P95_OVER_FLOOR:g} s {verdict(p95 <= floor95 + TARGET_P95_OVER_FLOOR)}"
        )
    return lines


def breakdown_lines(samples: list[Sample], db: Database, log: str) -> list[str]:
    """Where the time goes, from the rows the push sync wrote (their timestamps) and the log."""
    stages: dict[str, list[float]] = {
        "APPEND (send → OK)": [],
        "OK → bare NOTIFY heard (Dovecot)": [],
        "bare NOTIFY → email row built": [],
        "OK → email row built": [],
        "email row → event row": [],
        "event → relayed (dispatched_at)": [],
        "relayed → delivery row": [],
        "delivery row → webhook received": [],
        "event row → subscription frame": [],
    }
    for sample in samples:
        stages["APPEND (send → OK)"].append(sample.ok - sample.sent)
        found = db.rows(
            "SELECT e.created_at, ev.created_at, ev.dispatched_at, "
            "(SELECT MIN(d.created_at) FROM webhook_deliveries d WHERE d.event_id = ev.id) "
            "FROM emails e JOIN events ev ON ev.type = 'email.received' AND ev.payload LIKE :like "
            "WHERE e.subject = :subject",
            subject=sample.subject,
            like=f"%{json.dumps(sample.subject)[1:-1]}%",
        )
        if not found:
            continue
        row, event, dispatched, delivery = (epoch(value) for value in found[0])
        pairs = [
            ("OK → bare NOTIFY heard (Dovecot)", sample.ok, sample.notify),
            ("bare NOTIFY → email row built", sample.notify, row),
            ("OK → email row built", sample.ok, row),
            ("email row → event row", row, event),
            ("event → relayed (dispatched_at)", event, dispatched),
            ("relayed → delivery row", dispatched, delivery),
            ("delivery row → webhook received", delivery, sample.webhook),
            ("event row → subscription frame", event, sample.ws),
        ]
        for name, start, end in pairs:
            if start is not None and end is not None:
                stages[name].append(end - start)
    lines = ["  where the time goes (p50 / p95; row timestamps are taken when Python builds the row):"]
    for name, values in stages.items():
        if values:
            lines.append(f"    {name:<36}{percentile(values, 50):7.3f} s {percentile(values, 95):7.3f} s")
    pushes = push_sync_seconds(log)
    if pushes:
        lines.append(
            f"    {'push sync (log, ' + str(len(pushes)) + ' with news)':<36}"
            f"{percentile(pushes, 50):7.3f} s {percentile(pushes, 95):7.3f} s"
        )
    return lines


# ------------------------------------------------------------------------------------------------
# 1. Arrival latency
# ------------------------------------------------------------------------------------------------


def watched(db: Database, count: int, start: str = "") -> int:
    """How many servers are watched (a status, not "reconnecting"), optionally ``start``-ing so."""
    rows = db.rows(
        "SELECT COUNT(*) FROM imap_servers WHERE watch_status <> '' "
        "AND watch_status NOT LIKE 'reconnecting%' AND watch_status LIKE :start",
        start=start + "%",
    )
    return int(rows[0][0]) >= count and int(rows[0][0])


def run_latency(args: argparse.Namespace, root: Path) -> list[str]:
    """Arrival latency per folder against the bare-IDLE floor."""
    from tests.support.dovecot import DovecotServer
    from tests.support.receiver import Receiver

    say("latency: starting Dovecot and imap2api serve")
    with contextlib.ExitStack() as stack:
        dovecot = stack.enter_context(DovecotServer(tls=False))
        user = dovecot.add_user()
        dovecot.add_messages(user, "INBOX", [message(f"old mail {n}") for n in range(20)])
        dovecot.add_messages(user, "Archive", [message(f"old archive {n}") for n in range(5)])
        database_url, read_url = stack.enter_context(database(args.database, root, "latency"))
        settings = serve_settings(
            database_url,
            "bench-" + secrets.token_hex(16),
            scheduler_enabled="true",
            watch_enabled="true",
            log_level=args.log_level,
        )
        serve = Serve(root, **settings)
        stack.callback(serve.close)
        serve.cli("createuser", API_USER, "--password", API_PASSWORD)
        api = Api(serve.url)
        stack.callback(api.close)
        server_id = api.add_server(dovecot, user)
        run = api.sync(server_id)
        say(f"latency: first sync {run.get('status')}, {run.get('messages_new')} messages")
        receiver = stack.enter_context(Receiver())
        api.webhook(receiver.url)
        subscription = Subscription(serve.url, api.token)
        stack.callback(subscription.close)
        db = Database(read_url)
        stack.callback(db.close)
        watch_started = time.monotonic()
        wait_until("the watch says NOTIFY", lambda: watched(db, 1, "NOTIFY"), 60, every=0.2)
        say(f"latency: watched over NOTIFY after {time.monotonic() - watch_started:.1f} s")
        floors = {folder: IdleFloor(dovecot, user, folder) for folder in FOLDERS}
        for floor in floors.values():
            stack.callback(floor.close)
        notify = NotifyFloor(dovecot, user)  # for the breakdown: when Dovecot tells a NOTIFY client
        stack.callback(notify.close)
        appender = dovecot.client(user)
        stack.callback(appender.shutdown)
        tag = secrets.token_hex(3)
        for folder in FOLDERS:
            for n in range(PROBES):
                probe = append_and_wait(
                    appender,
                    folder,
                    f"probe {tag} {folder} {n}",
                    floors[folder],
                    receiver,
                    subscription,
                    60,
                    "",
                    notify,
                )
                if probe.webhook is None or probe.ws is None:
                    raise RuntimeError(f"probe message {n} in {folder} did not come through within 60 s")
        say(f"latency: probes came through; {args.messages} messages per folder")
        gaps = random.Random(args.seed)
        rotated_log = dovecot.home(user) / "Maildir" / "dovecot.list.index.log.2"
        notes = []

        def series(
            folder: str, count: int, name: str, timeout: float, notify_grace: float | None = NOTIFY_GRACE
        ) -> list[Sample]:
            """``count`` messages to ``folder``, one at a time, until the watchdog says stop."""
            watchdog = Watchdog(db, serve)
            found = []
            for n in range(count):
                rotated = bool(rotated_logs(dovecot, user, folder))
                sample = append_and_wait(
                    appender,
                    folder,
                    f"push bench {tag} {name} {folder} {n}",
                    floors[folder],
                    receiver,
                    subscription,
                    timeout,
                    folder,
                    notify,
                    notify_grace,
                )
                sample.rotated = rotated
                found.append(sample)
                if not watchdog.check(sample):
                    notes.append(f"  {folder} ({name}): {watchdog.stopped}")
                    break
                time.sleep(args.gap * (1 + gaps.random()))
                if (n + 1) % 50 == 0:
                    say(f"latency: {folder} {n + 1}/{count}")
            return found

        samples = {folder: series(folder, args.messages, "main", args.timeout) for folder in FOLDERS}
        rotation: dict[str, list[Sample]] = {}
        filled = 0
        if args.rotation:
            # Dovecot's NOTIFY misses changes of folders other than INBOX once the user's mailbox list
            # index log has rotated (it checks every mailbox_idle_check_interval, 30 s, instead): make
            # it rotate with APPENDs to Trash (which imap2api does not mirror) and measure again.
            say("latency: filling Trash until dovecot.list.index.log rotates")
            while not rotated_log.exists() and filled < 5000:
                appender.append("Trash", message(f"filler {filled}"))
                filled += 1
                if filled % 25 == 0:
                    time.sleep(0.5)  # let the sessions read the log as it grows, as in real life
            time.sleep(2)
            say(f"latency: rotated after {filled} APPENDs to Trash; {args.rotation} messages per folder")
            rotation = {
                folder: series(folder, args.rotation, "rotated", max(args.timeout, 40.0), None)
                for folder in FOLDERS
            }
        status = dict(db.rows("SELECT id, watch_status FROM imap_servers"))[server_id]
        lines = [
            f"ARRIVAL LATENCY: {args.messages} messages per folder, one at a time "
            f"({args.gap:g}-{2 * args.gap:g} s apart), {args.database}, watch {status!r}; "
            "t0 = APPEND's tagged OK read"
        ]
        for folder in FOLDERS:
            before = [sample for sample in samples[folder] if not sample.rotated]
            after = [sample for sample in samples[folder] if sample.rotated]
            if before:
                lines += latency_lines(f"  {folder}", before, args.timeout)
            if after:
                title = (
                    f"  {folder}, the {len(after)} of them sent after Dovecot rotated "
                    f"{' and '.join(rotated_logs(dovecot, user, folder))}"
                )
                lines += latency_lines(title, after, args.timeout)
        if rotation:
            lines.append(
                f"  after dovecot.list.index.log rotated ({filled} APPENDs to Trash), "
                f"{args.rotation} messages per folder:"
            )
            for folder in FOLDERS:
                if rotation[folder]:
                    lines += latency_lines(
                        f"  {folder} (rotated)", rotation[folder], max(args.timeout, 40.0), None
                    )
        lines += notes
        main = [sample for folder in FOLDERS for sample in samples[folder] if not sample.rotated]
        lines += breakdown_lines(main, db, serve.log())
        if subscription.errors:
            lines.append(f"  subscription frames not understood: {subscription.errors[:3]}")
        lines += dovecot_warnings(dovecot)
        return lines


# ------------------------------------------------------------------------------------------------
# 2. Many accounts
# ------------------------------------------------------------------------------------------------


def first_syncs(server_ids: list[int], real: int, threads: int) -> float:
    """Sync ``real`` of the servers for real (run_sync, on ``threads`` threads); the others get
    ``last_sync`` set directly. Returns the wall time of the real syncs."""
    from sqlalchemy import update

    from imap2api.crud import servers as crud_servers
    from imap2api.crud import sync_runs as crud_runs
    from imap2api.db import session_scope
    from imap2api.enums import SyncTrigger
    from imap2api.models import ImapServer, utcnow
    from imap2api.sync.engine import run_sync

    def one(server_id: int) -> str:
        with session_scope() as session:
            server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
            run_id = crud_runs.start_run(session, server=server, trigger=SyncTrigger.CLI)[0].id
        assert run_id is not None
        return str(run_sync(run_id).status)

    started = time.monotonic()
    done = 0
    with ThreadPoolExecutor(threads) as pool:
        for status in pool.map(one, server_ids[:real]):
            if status != "success":
                raise RuntimeError(f"a first sync ended {status}")
            done += 1
            if done % 200 == 0:
                say(f"accounts: {done}/{real} first syncs")
    seconds = time.monotonic() - started
    rest = server_ids[real:]
    if rest:
        with session_scope() as session:
            session.exec(update(ImapServer).where(ImapServer.id.in_(rest)).values(last_sync=utcnow()))  # type: ignore[union-attr]
    return seconds


def prepare_accounts(
    dovecot: Any, users: list[str], root: Path, database_url: str | None, args: Any
) -> tuple[str, float]:
    """The database of the many-accounts server, made in this process: a user, one server per mailbox,
    their first syncs, then every server made inactive (not watchable) until the bench says go.
    Returns the secret key and the first syncs' wall time."""
    from bench.sync import prepare_environment

    data_dir = root / "data"
    prepare_environment(str(data_dir))
    secret_key = os.environ["IMAP2API_SECRET_KEY"]
    from sqlalchemy import update

    from imap2api.config import reload_settings
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import users as crud_users
    from imap2api.db import dispose_engines, migrate, session_scope
    from imap2api.models import ImapServer
    from imap2api.validation import validate_server

    reload_settings(data_dir=data_dir, database_url=database_url)
    dispose_engines()
    migrate()
    server_ids = []
    with session_scope() as session:
        owner = crud_users.create_user(session, username=API_USER, password=API_PASSWORD)
        assert owner.id is not None
        for user in users:
            data = validate_server(
                {
                    "name": f"push bench {user}",
                    "host": dovecot.host,
                    "port": dovecot.port,
                    "username": user,
                    "password": PASSWORD,
                    "tls_mode": "none",
                }
            )
            server = crud_servers.create_server(session, owner_id=owner.id, data=data)
            session.flush()
            assert server.id is not None
            server_ids.append(server.id)
    real = len(server_ids) if args.real_syncs is None else min(args.real_syncs, len(server_ids))
    say(f"accounts: {len(server_ids)} servers stored; {real} first syncs for real")
    seconds = first_syncs(server_ids, real, args.sync_threads)
    with session_scope() as session:
        session.exec(update(ImapServer).values(is_active=False))
    dispose_engines()
    return secret_key, seconds


def run_accounts(args: argparse.Namespace, root: Path) -> list[str]:
    """One imap2api process watching N accounts: memory, time to watch them all, threads, latency."""
    from tests.support.dovecot import DovecotServer
    from tests.support.receiver import Receiver

    n = args.accounts
    lines: list[str] = []
    inotify = int(INOTIFY_LIMIT.read_text()) if INOTIFY_LIMIT.exists() else 0
    with contextlib.ExitStack() as stack:
        dovecot = stack.enter_context(DovecotServer(tls=False, extra_config=DOVECOT_LIMITS))
        started = time.monotonic()
        users = [dovecot.add_user(f"acct{number:05d}") for number in range(n)]
        for user in users:
            dovecot.add_message(user, "INBOX", message(f"welcome {user}"))
        say(f"accounts: {n} Dovecot users with one message each in {time.monotonic() - started:.1f} s")
        database_url, read_url = stack.enter_context(database(args.database, root, "accounts"))
        secret_key, sync_seconds = prepare_accounts(dovecot, users, root, database_url, args)
        real = n if args.real_syncs is None else min(args.real_syncs, n)
        settings = serve_settings(database_url, secret_key, scheduler_enabled="false", watch_enabled="true")
        serve = Serve(root, **settings)
        stack.callback(serve.close)
        api = Api(serve.url)
        stack.callback(api.close)
        receiver = stack.enter_context(Receiver())
        api.webhook(receiver.url)
        subscription = Subscription(serve.url, api.token)
        stack.callback(subscription.close)
        db = Database(read_url)
        stack.callback(db.close)
        serve.settle()
        before = serve.status()
        cpu_before = serve.cpu_seconds()
        say(f"accounts: serve up, {before['VmRSS'] / MB:.1f} MB, {before['Threads']} threads; watching {n}")

        db.execute("UPDATE imap_servers SET is_active = :yes", yes=True)
        possible = time.monotonic()
        wait_until("a first watch", lambda: watched(db, 1), 120, every=0.2)
        first_at = time.monotonic()
        say(f"accounts: first watch after {first_at - possible:.1f} s (the manager's tick)")
        progress = {"last": 0, "at": time.monotonic()}

        def all_watched() -> bool:
            count = watched(db, 0) or 0
            if count >= progress["last"] + max(1, n // 5):
                say(f"accounts: {count}/{n} watched after {time.monotonic() - possible:.1f} s")
                progress["last"] = count
            return count >= n

        try:
            wait_until(f"all {n} watched", all_watched, max(180.0, n * 0.5), every=0.5)
            all_at = time.monotonic()
        except TimeoutError:
            all_at = None
        statuses = db.rows("SELECT watch_status, COUNT(*) FROM imap_servers GROUP BY watch_status")
        settled = serve.settle()
        after = serve.status()
        cpu = serve.cpu_seconds() - cpu_before
        per_account = (after["VmRSS"] - before["VmRSS"]) / MB / n
        try:
            connections = len(
                [line for line in dovecot.doveadm("who", "-1").splitlines()[1:] if line.strip()]
            )
        except RuntimeError as exc:
            connections = -1
            say(f"accounts: doveadm who failed: {exc}")
        say(
            f"accounts: {after['VmRSS'] / MB:.1f} MB, {after['Threads']} threads; "
            f"arrival of {args.scale_messages} messages"
        )

        rng = random.Random(args.seed)
        tag = secrets.token_hex(3)
        samples = []
        watchdog = Watchdog(db, serve)
        for number in range(args.scale_messages + PROBES):
            user = rng.choice(users)
            floor = IdleFloor(dovecot, user, "INBOX")
            try:
                with dovecot.client(user) as appender:
                    sample = append_and_wait(
                        appender,
                        "INBOX",
                        f"push bench {tag} {user} {number}",
                        floor,
                        receiver,
                        subscription,
                        args.timeout,
                        user,
                    )
            finally:
                floor.close()
            if number >= PROBES:
                samples.append(sample)
            if not watchdog.check(sample):
                break
        end_status = serve.status()

        watch_time = f"{all_at - possible:.1f} s" if all_at is not None else "NOT within the timeout"
        lines.append(
            f"MANY ACCOUNTS: {n} servers watched by one imap2api serve ({args.database}, "
            f"WATCH_SYNC_THREADS default, scheduler off); first syncs: {real} real "
            f"({sync_seconds:.0f} s on {args.sync_threads} threads, in the bench process)"
            + (f", {n - real} by setting last_sync" if real < n else "")
        )
        lines.append(
            f"  resident memory  before {before['VmRSS'] / MB:7.1f} MB   "
            f"all watched {after['VmRSS'] / MB:7.1f} MB   peak {after['VmHWM'] / MB:7.1f} MB   "
            f"after the messages {end_status['VmRSS'] / MB:7.1f} MB"
        )
        lines.append(
            f"  per watched account {per_account:.3f} MB   ≤ {TARGET_MB_PER_ACCOUNT:g} MB "
            f"{verdict(per_account <= TARGET_MB_PER_ACCOUNT)}"
        )
        lines.append(
            f"  threads          before {before['Threads']}   all watched {after['Threads']}   "
            f"Dovecot IMAP connections {connections}"
        )
        lines.append(
            f"  watching possible → first watched {first_at - possible:.1f} s (the manager's next tick), "
            f"→ all {n} watched {watch_time}; then {settled:.0f} s until the process went quiet; "
            f"CPU {cpu:.1f} s in all"
        )
        lines.append(
            "  watch_status: " + ", ".join(f"{status or '(none)'!r} × {count}" for status, count in statuses)
        )
        lines += latency_lines(
            f"  arrival, {args.scale_messages} messages to random accounts (floor: a bare IDLE on that "
            "account's INBOX, opened before each APPEND)",
            samples,
            args.timeout,
        )
        if watchdog.stopped:
            lines.append(f"  {watchdog.stopped}")
        lines += breakdown_lines(samples, db, serve.log())
        lines += dovecot_warnings(dovecot)
        if inotify and inotify < connections + 100:
            lines.append(
                f"  note: fs.inotify.max_user_instances is {inotify} (per uid; Dovecot's imap processes "
                "share one): past it Dovecot checks each mailbox every 1 s (mailbox_idle_check_interval) "
                "instead of at once, for the floor as for imap2api. Raise it above the connections "
                "(sysctl fs.inotify.max_user_instances=8192) for a fair measure."
            )
        return lines


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; 0 whatever they say."""
    parser = argparse.ArgumentParser(prog="python -m bench.push", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per folder for the latency (200)")
    parser.add_argument("--accounts", type=int, default=1000, help="N watched accounts (default 1000)")
    parser.add_argument("--scale-messages", type=int, default=50, help="messages while N are watched (50)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--only", choices=("latency", "accounts"), default=None)
    parser.add_argument(
        "--real-syncs",
        type=int,
        default=None,
        help="first syncs made for real (default: all N); the rest get last_sync set directly",
    )
    parser.add_argument("--sync-threads", type=int, default=4, help="threads for the first syncs (4)")
    parser.add_argument(
        "--rotation",
        type=int,
        default=3,
        help="latency: messages per folder after Dovecot's list index log rotated (3; 0: skip)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.5,
        help="latency: quiet seconds between two messages, G to 2G at random (0.5; 0: back to back)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each message (30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="latency: the serve's LOG_LEVEL (DEBUG: every notice and push sync)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite database)")
    args = parser.parse_args(argv)

    from tests.support.dovecot import find_dovecot

    if find_dovecot() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by imap2api serve
    print(
        f"bench.push: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"open files limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="imap2api-bench-push-"))

    def terminated(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")  # unwinds: Dovecot and serve are stopped

    signal.signal(signal.SIGTERM, terminated)
    try:
        for phase, run in (("latency", run_latency), ("accounts", run_accounts)):
            if args.only in (None, phase):
                root = base / phase
                root.mkdir()
                try:
                    lines = run(args, root)
                except Exception as exc:  # noqa: BLE001 - report it and go on with the other phase
                    lines = [f"{phase.upper()}: failed: {type(exc).__name__}: {exc}"]
                    import traceback

                    traceback.print_exc()
                print("\n".join([*lines, ""]), flush=True)  # each phase's figures as soon as it ends
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
