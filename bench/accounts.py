"""Many-accounts benchmark: first syncs of N accounts by two worker processes, then their idle re-sync.

Run ``python -m bench.accounts [--accounts 1000] [--messages 200]`` from the project root. Everything
is throw-away: a Dovecot in a temp dir (tests/support/dovecot.py, STARTTLS, bench.push's limits for
many connections), a PostgreSQL database dropped at the end, a Redis namespace of its own
(``IMAP2API_REDIS_PREFIX``) whose keys are deleted at the end.

1. MAILBOXES: N Dovecot users with M messages each (bench.sync's Corpus and folder plan, as Maildir
   files). Generating a Corpus message costs about 13 ms, so a pool of 3 × M messages is made once
   and each account gets its own rotation of it.
2. RAW LIMIT: the same mail fetched and parsed as bench.sync's ``raw_limit`` does (STARTTLS,
   imapclient batch FETCH, compat32 parse), by 2 processes of SYNC_WORKER_THREADS threads each: as
   many parallel clients as the two workers have scheduled-sync threads.
3. FIRST SYNCS: ``imap2api worker --processes 2`` (real subprocesses on PostgreSQL + Redis; the
   watch off: bench.push measures it). The bench stores a user and N servers through crud; the
   workers' scheduler queues their first syncs at its next tick. Timed from the first run queued
   until the last first sync finished; fairness is the last account's time to its first sync
   against the median account's, both from that origin.
4. DATABASE SIZE (``pg_database_size``, ``pg_total_relation_size`` per table) per 1,000 messages, and
   each worker process's VmRSS (sampled every second) and VmHWM from /proc.
5. IDLE RE-SYNC: every server made due, ``enqueue_due_syncs`` (the scheduler's own step) called from
   the bench, timed until every run finished; the database's transactions per re-sync
   (``pg_stat_database``). Then, the workers stopped, a sample of accounts is re-synced in this process
   through tests/support/imap_proxy.py: IMAP commands and SQL statements per idle re-sync.

Targets (issue #18): the last account's first sync within 2 × the median's; an idle re-sync of all
N within 2% of their first syncs, at most one SELECT-equivalent round trip per account. The first
syncs' rate against the raw limit is printed against target 1's 0.70. Progress goes to stderr, the
figures to stdout; the exit status is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

TARGET_FAIRNESS = 2.0  # last account's first sync ÷ the median account's, at most
TARGET_RESYNC_RATIO = 0.02  # idle re-sync of all ÷ their first syncs, at most
TARGET_SELECTS = 1  # SELECT-equivalent round trips (EXAMINE, SELECT, STATUS, LIST-STATUS) per idle re-sync
TARGET_RATE_RATIO = 0.70  # target 1's bar, for the first syncs' rate against the raw limit

MB = 1_000_000
PASSWORD = "secret"
WORKER_PROCESSES = 2
SAMPLE_ACCOUNTS = 3
REDIS_URL = os.environ.get("IMAP2API_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SELECT_LIKE = ("EXAMINE", "SELECT", "STATUS")


def say(text: str) -> None:
    """Progress, not results."""
    print(text, file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


# ------------------------------------------------------------------------------------------------
# 1. Mailboxes
# ------------------------------------------------------------------------------------------------


def fill_accounts(dovecot: Any, count: int, messages: int, seed: int) -> tuple[list[str], int]:
    """``count`` users with ``messages`` messages each (bench.sync's folder plan); the users and the bytes."""
    from bench.sync import Corpus, folder_plan

    corpus = Corpus(seed=seed)
    plan = folder_plan(messages, corpus.shape)
    pool = {folder: [corpus.message(folder) for _ in range(3 * n)] for folder, n in plan.items() if n}
    users = [dovecot.add_user(f"acct{number:05d}") for number in range(count)]

    def deliver(number: int) -> int:
        size = 0
        for folder, items in pool.items():
            want = plan[folder]
            start = (number * want) % len(items)
            for raw, flags in (items * 2)[start : start + want]:
                dovecot.add_message(users[number], folder, raw, flags=flags)
                size += len(raw)
        return size

    with ThreadPoolExecutor(4) as threads:
        total = sum(threads.map(deliver, range(count)))
    return users, total


def warm_up(dovecot: Any, users: list[str], threads: int) -> None:
    """Let Dovecot build every mailbox's indexes before anything is timed (bench.sync's warm_up)."""
    from bench.sync import warm_up as warm_one

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda user: warm_one(dovecot, user), users))


# ------------------------------------------------------------------------------------------------
# 2. The raw limit: parallel clients
# ------------------------------------------------------------------------------------------------


def _raw_share(host: str, port: int, ca_file: str, users: list[str], threads: int, batch: int) -> tuple:
    """One process's share of the raw limit: ``threads`` clients taking ``users`` in turn."""
    from bench.sync import raw_limit

    @dataclass
    class _Dovecot:
        host: str
        port: int
        ca_cert_path: str

    dovecot = _Dovecot(host, port, ca_file)
    todo: queue.Queue[str] = queue.Queue()
    for user in users:
        todo.put(user)
    totals = [0, 0]
    lock = threading.Lock()

    def work() -> None:
        while True:
            try:
                user = todo.get_nowait()
            except queue.Empty:
                return
            done = raw_limit(dovecot, user, batch)
            with lock:
                totals[0] += done.messages
                totals[1] += done.bytes

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return totals[0], totals[1], time.perf_counter() - started


def raw_limit(dovecot: Any, users: list[str], threads: int, batch: int) -> tuple[int, int, float]:
    """(messages, bytes, seconds) of every mailbox fetched by WORKER_PROCESSES processes × ``threads``."""
    shares = [users[number::WORKER_PROCESSES] for number in range(WORKER_PROCESSES)]
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKER_PROCESSES) as pool:
        futures = [
            pool.submit(
                _raw_share, dovecot.host, dovecot.port, str(dovecot.ca_cert_path), share, threads, batch
            )
            for share in shares
        ]
        results = [future.result() for future in futures]
    seconds = time.perf_counter() - started
    return sum(result[0] for result in results), sum(result[1] for result in results), seconds


# ------------------------------------------------------------------------------------------------
# 3. The workers
# ------------------------------------------------------------------------------------------------


@dataclass
class Workers:
    """``imap2api worker --processes 2`` in its own process group, with memory sampled every second."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    peak_rss: dict[int, int] = field(default_factory=dict)
    _sampling: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Start the workers and wait until both processes run their lanes."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "imap2api.cli", "worker", "--processes", str(WORKER_PROCESSES)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while self.log_path.read_text(errors="replace").count("started with") < 3 * WORKER_PROCESSES:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"imap2api worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        threading.Thread(target=self._sample, daemon=True).start()

    def children(self) -> list[int]:
        """The worker processes (children of ``imap2api worker``)."""
        assert self.process is not None
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in path.read_text().split()]
        return []

    @staticmethod
    def memory(pid: int) -> dict[str, int]:
        """VmRSS and VmHWM of a process, in bytes."""
        found = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0]) * 1024
        return found

    def _sample(self) -> None:
        while not self._sampling.wait(1.0):
            for pid in self.children():
                rss = self.memory(pid).get("VmRSS", 0)
                self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), rss)

    def stop(self) -> None:
        """SIGTERM the group (running syncs get SHUTDOWN_TIMEOUT_SECONDS), SIGKILL if it lingers."""
        self._sampling.set()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def add_servers(dovecot: Any, users: list[str]) -> list[int]:
    """One imap2api user owning a server per mailbox (STARTTLS, as bench.sync), stored in one transaction."""
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import users as crud_users
    from imap2api.db import session_scope
    from imap2api.validation import validate_server

    ids = []
    with session_scope() as session:
        owner = crud_users.create_user(session, username="bench_accounts", password=secrets.token_hex(8))
        assert owner.id is not None
        for user in users:
            data = validate_server(
                {
                    "name": f"accounts bench {user}",
                    "host": dovecot.host,
                    "port": dovecot.port,
                    "username": user,
                    "password": PASSWORD,
                    "tls_mode": "starttls",
                }
            )
            server = crud_servers.create_server(session, owner_id=owner.id, data=data)
            session.flush()
            assert server.id is not None
            ids.append(server.id)
    return ids


def sql(statement: str, **params: Any) -> list[Any]:
    """Rows of a statement on imap2api's database, committed."""
    from sqlalchemy import text

    from imap2api.db import get_engine

    with get_engine().begin() as connection:
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def wait_for_runs(after_id: int, count: int, label: str, timeout: float) -> list[Any]:
    """The finished runs with id > ``after_id``, once ``count`` servers have one (else TimeoutError)."""
    deadline = time.monotonic() + timeout
    reported = 0
    while True:
        done = sql(
            "SELECT COUNT(DISTINCT imap_server_id) FROM sync_runs "
            "WHERE id > :after AND status IN ('success', 'error')",
            after=after_id,
        )[0][0]
        if done >= reported + max(1, count // 10):
            say(f"{label}: {done}/{count}")
            reported = done
        if done >= count:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: only {done} of {count} finished within {timeout:.0f} s")
        time.sleep(0.25)
    return sql(
        "SELECT imap_server_id, status, created_at, started_at, finished_at, messages_new, error_code "
        "FROM sync_runs WHERE id > :after AND status IN ('success', 'error') ORDER BY id",
        after=after_id,
    )


def seconds_between(start: datetime, end: datetime) -> float:
    """``end - start`` in seconds."""
    return (end - start).total_seconds()


def database_size() -> tuple[int, list[tuple[str, int]]]:
    """The database's size and its tables' (with indexes and TOAST), biggest first."""
    total = sql("SELECT pg_database_size(current_database())")[0][0]
    tables = sql(
        "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC"
    )
    return int(total), [(str(name), int(size)) for name, size in tables]


def transactions() -> int:
    """Commits plus rollbacks of this database so far (pg_stat_database; the stats lag by up to a second)."""
    sql("SELECT pg_stat_clear_snapshot()")
    row = sql("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
    return int(row[0][0])


# ------------------------------------------------------------------------------------------------
# 5. A sample of idle re-syncs in this process, counted
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement this process sends while the block runs (its first 60 characters)."""
    from tests.support.statements import recorded_statements

    found: list[str] = []
    with recorded_statements() as sent:
        yield found
    found += [statement[:60] for statement in sent]


def sample_resyncs(dovecot: Any, users: list[str]) -> list[tuple[list[str], list[str], float]]:
    """For a few mailboxes: a server through the counting relay, its first sync, then an idle re-sync's
    IMAP commands, SQL statements and wall time."""
    from bench.sync import new_mirror, timed_sync
    from imap2api.crud import servers as crud_servers
    from imap2api.db import session_scope
    from tests.support.imap_proxy import ImapProxy

    found = []
    with ImapProxy(dovecot.host, dovecot.port) as proxy:
        for user in users:
            _, server_id = new_mirror(dovecot, user)
            with session_scope() as session:
                crud_servers.update_server(
                    session, owner_id=None, server_id=server_id, data={"port": proxy.port, "tls_mode": "none"}
                )
            first, *_ = timed_sync(server_id)
            assert first.status == "success", first.error
            proxy.clear()
            with statements() as sent:
                run, seconds, _, _ = timed_sync(server_id)
            assert run.status == "success" and run.messages_new == 0, run
            found.append((proxy.texts(), list(sent), seconds))
    return found


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def environment(root: Path, **extra: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """Dovecot, a fresh PostgreSQL database (migrated) and a Redis prefix; yields (dovecot, worker env)."""
    from bench.push import DOVECOT_LIMITS
    from bench.sync import prepare_environment
    from tests.support.dovecot import DovecotServer
    from tests.support.services import create_postgres_database, drop_postgres_database, redis_keys

    data_dir = root / "data"
    prepare_environment(str(data_dir))
    name = f"imap2api_bench_accounts_{os.getpid()}_{secrets.token_hex(3)}"
    prefix = f"bench-accounts-{secrets.token_hex(4)}"
    database_url = create_postgres_database(name)
    try:
        with DovecotServer(extra_config=DOVECOT_LIMITS) as dovecot:
            from imap2api.config import reload_settings
            from imap2api.db import dispose_engines, migrate

            env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
            env.update(
                {
                    "IMAP2API_DATA_DIR": str(data_dir),
                    "IMAP2API_DATABASE_URL": database_url,
                    "IMAP2API_REDIS_URL": REDIS_URL,
                    "IMAP2API_REDIS_PREFIX": prefix,
                    "IMAP2API_SECRET_KEY": os.environ["IMAP2API_SECRET_KEY"],
                    "IMAP2API_IMAP_CA_FILE": str(dovecot.ca_cert_path),
                    "IMAP2API_SCHEDULER_ENABLED": "true",
                    "IMAP2API_WATCH_ENABLED": "false",
                    "IMAP2API_LOG_LEVEL": "INFO",  # the lanes say when they run
                    # No scheduled re-sync while the first syncs run: the idle re-sync is asked for below.
                    "IMAP2API_SYNC_INTERVAL_SECONDS": "86400",
                    **extra,
                }
            )
            os.environ.update({key: value for key, value in env.items() if key.startswith("IMAP2API_")})
            os.environ["IMAP2API_SCHEDULER_ENABLED"] = "false"  # the bench process schedules nothing itself
            reload_settings()
            dispose_engines()
            migrate()
            try:
                yield dovecot, env
            finally:
                dispose_engines()
                with contextlib.suppress(Exception):
                    import redis

                    client = redis.Redis.from_url(REDIS_URL)
                    keys = redis_keys(REDIS_URL, prefix)
                    if keys:
                        client.delete(*keys)
                    client.close()
    finally:
        with contextlib.suppress(Exception):
            drop_postgres_database(name)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; 0 whatever they say."""
    parser = argparse.ArgumentParser(prog="python -m bench.accounts", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000, help="N accounts (default 1000)")
    parser.add_argument("--messages", type=int, default=200, help="M messages per account (default 200)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for all first syncs")
    parser.add_argument(
        "--sync-threads",
        type=int,
        default=None,
        help="SYNC_WORKER_THREADS of each worker (default: the setting)",
    )
    parser.add_argument("--show-sql", action="store_true", help="print the sample re-sync's SQL statements")
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.messages < 8:
        parser.error("--accounts must be at least 1 and --messages at least 8")

    from tests.support.dovecot import find_dovecot

    if find_dovecot() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 0
    root = Path(tempfile.mkdtemp(prefix="imap2api-bench-accounts-"))

    def terminated(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")  # unwinds: workers, Dovecot, database

    signal.signal(signal.SIGTERM, terminated)
    try:
        extra = {} if args.sync_threads is None else {"IMAP2API_SYNC_WORKER_THREADS": str(args.sync_threads)}
        with environment(root, **extra) as (dovecot, env):
            lines = run(args, dovecot, env, root)
        print("\n".join(lines), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(args: argparse.Namespace, dovecot: Any, env: dict[str, str], root: Path) -> list[str]:
    """The measurements, then the summary lines."""
    from imap2api.config import settings

    n, m = args.accounts, args.messages
    load_before = os.getloadavg()[0]
    threads = settings.sync_worker_threads
    say(f"filling {n} mailboxes with {m} messages each...")
    started = time.perf_counter()
    users, total_bytes = fill_accounts(dovecot, n, m, args.seed)
    warm_up(dovecot, users, 2 * threads)
    say(f"  {total_bytes / MB:.0f} MB in {time.perf_counter() - started:.0f} s")

    say(f"raw limit: {WORKER_PROCESSES} processes × {threads} threads...")
    raw_messages, raw_bytes, raw_seconds = raw_limit(dovecot, users, threads, settings.sync_batch_messages)
    assert raw_messages == n * m, f"the raw limit saw {raw_messages} messages, expected {n * m}"

    workers = Workers(env, root / "worker.log")
    try:
        workers.start()
        say(f"workers up ({workers.children()}); storing {n} servers, the scheduler queues their first syncs")
        from imap2api.workers.scheduler import enqueue_due_syncs

        stored_at = time.perf_counter()
        add_servers(dovecot, users)
        # The scheduler's own step, at once rather than at the workers' next tick (up to 15 s away).
        enqueue_due_syncs()
        first = list(
            {row[0]: row for row in reversed(wait_for_runs(0, n, "first syncs", args.timeout))}.values()
        )
        first_wall = time.perf_counter() - stored_at
        failed = [row for row in first if row[1] != "success"]
        origin = min(row[2] for row in first)
        finished = sorted(seconds_between(origin, row[4]) for row in first if row[1] == "success")
        first_seconds = finished[-1]
        median = statistics.median(finished)
        emails = sql("SELECT COUNT(*) FROM emails")[0][0]
        size, tables = database_size()
        memory = {pid: workers.memory(pid) for pid in workers.children()}
        peaks = dict(workers.peak_rss)

        say("idle re-sync of every account (enqueue_due_syncs)...")
        before_id = sql("SELECT COALESCE(MAX(id), 0) FROM sync_runs")[0][0]
        xacts_before = transactions()
        sql("UPDATE imap_servers SET next_sync_at = NULL")
        resync_started = time.perf_counter()
        queued = enqueue_due_syncs()
        queue_seconds = time.perf_counter() - resync_started
        again = wait_for_runs(before_id, n, "idle re-syncs", max(600.0, first_wall))
        resync_seconds = time.perf_counter() - resync_started
        time.sleep(1.5)  # pg_stat_database lags
        xacts = transactions() - xacts_before
        resync_failed = [row for row in again if row[1] != "success" or row[5]]
        durations = sorted(seconds_between(row[3], row[4]) for row in again if row[3] and row[4])
    finally:
        workers.stop()
    say(f"a sample of {SAMPLE_ACCOUNTS} idle re-syncs through the counting relay, in this process...")
    samples = sample_resyncs(dovecot, users[:SAMPLE_ACCOUNTS])

    raw_rate = raw_messages / raw_seconds
    sync_rate = emails / first_seconds
    commands = [texts for texts, _, _ in samples]
    selects = max(sum(1 for text in texts if select_like(text)) for texts in commands)
    per_thousand = emails / 1000
    p90 = finished[int(len(finished) * 0.9) - 1]
    p95 = durations[int(len(durations) * 0.95) - 1]
    failures = f" ({', '.join(sorted({row[6] for row in failed}))})" if failed else ""
    writes = sum(1 for text in samples[0][1] if not text.upper().startswith("SELECT"))
    load_after = os.getloadavg()[0]
    return [
        "",
        f"imap2api many-accounts benchmark: {n} accounts × {m} messages ({total_bytes / MB:.0f} MB), "
        f"PostgreSQL, {WORKER_PROCESSES} worker processes × SYNC_WORKER_THREADS {threads}, "
        f"batches of {settings.sync_batch_messages}",
        f"load average (1 min) before/after: {load_before:.2f}/{load_after:.2f} on {os.cpu_count()} CPUs",
        "",
        f"raw limit ({WORKER_PROCESSES} × {threads} clients)   {raw_seconds:8.1f} s  {raw_rate:7.0f} msg/s  "
        f"{raw_bytes / MB / raw_seconds:6.1f} MB/s",
        f"first syncs (workers)           {first_seconds:8.1f} s  {sync_rate:7.0f} msg/s  "
        f"(from the first run queued; {first_wall:.1f} s from storing the servers)",
        f"  {len(finished)} succeeded, {len(failed)} failed{failures}",
        f"  time to first sync: median {median:.1f} s, p90 {p90:.1f} s, last {first_seconds:.1f} s",
        f"idle re-sync of all             {resync_seconds:8.2f} s  ({len(queued)} queued in "
        f"{queue_seconds:.2f} s; run p50 {statistics.median(durations):.3f} s, p95 {p95:.3f} s; "
        f"{len(resync_failed)} failed or fetched)",
        f"  database transactions per re-sync: {xacts / n:.1f} (pg_stat_database, all processes)",
        "",
        f"database: {size / MB:.1f} MB for {emails} emails = {size / MB / per_thousand:.2f} MB per 1,000 "
        "messages",
        *(
            f"  {name:<22}{table / MB:9.1f} MB  {table / MB / per_thousand:7.2f} MB per 1,000"
            for name, table in tables[:8]
        ),
        "worker memory (per process, after the first syncs): "
        + "; ".join(
            f"VmRSS {values.get('VmRSS', 0) / MB:.0f} MB (highest sampled {peaks.get(pid, 0) / MB:.0f}), "
            f"VmHWM {values.get('VmHWM', 0) / MB:.0f} MB"
            for pid, values in memory.items()
        ),
        "",
        "a sample idle re-sync (in this process, through the relay): "
        f"{statistics.median(seconds for *_, seconds in samples):.3f} s",
        f"  IMAP: {' | '.join(commands[0])}",
        f"  SQL statements: {', '.join(str(len(sent)) for _, sent, _ in samples)} per re-sync "
        f"({writes} not SELECTs in the first)",
        *(f"    {text}" for text in (samples[0][1] if args.show_sql else [])),
        "",
        f"{'target':<52}{'value':>10}{'goal':>10}  result",
        "-" * 80,
        target_row(
            "first syncs rate / raw limit rate (target 1's bar)",
            sync_rate / raw_rate,
            ">=",
            TARGET_RATE_RATIO,
        ),
        target_row(
            "fairness: last / median time to first sync", first_seconds / median, "<=", TARGET_FAIRNESS
        ),
        target_row(
            "idle re-sync of all / first syncs", resync_seconds / first_seconds, "<=", TARGET_RESYNC_RATIO
        ),
        target_row("SELECT-equivalent round trips per idle re-sync", selects, "<=", TARGET_SELECTS),
    ]


def select_like(command: str) -> bool:
    """Whether a command opens or asks the state of folders: EXAMINE, SELECT, STATUS, LIST-STATUS."""
    text = command.upper()
    return text.startswith(SELECT_LIKE) or (text.startswith("LIST") and "STATUS" in text)


def target_row(label: str, value: float, sense: str, goal: float) -> str:
    """One line of the targets table, with PASS or MISS."""
    ok = value >= goal if sense == ">=" else value <= goal
    shown = f"{value:.4f}" if goal < 0.1 else f"{value:.2f}" if isinstance(value, float) else str(value)
    return f"{label:<52}{shown:>10}{sense + ' ' + format(goal, 'g'):>10}  {verdict(ok)}"


if __name__ == "__main__":
    sys.exit(main())
