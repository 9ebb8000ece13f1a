"""Download benchmark: the server's memory while it streams a big attachment, and a slow reader.

Run ``python -m bench.downloads [--small-mb 1] [--big-mb 25] [--rounds 3] [--slow-seconds 15]``.
Everything is throw-away: Dovecot in a temp dir (tests/support/dovecot.py, clear text) holding two
messages in INBOX with one attachment each, ``--small-mb`` and ``--big-mb`` MB of random bytes
(base64 in the message), and a real ``imap2api serve`` subprocess on SQLite in a temp dir
(scheduler and watch off, SYNC_MAX_MESSAGE_BYTES 40 MB so the big message is mirrored whole).

1. SETUP: a user (``imap2api createuser``), a token, the IMAP server (REST, ``tls_mode`` "none"), a
   sync (``POST .../sync/`` waits), the two emails' details and their attachments' ``download_url``.
   The downloads are measured in that process (the sync's own peak is printed: it parses the whole
   34 MB message, and glibc gives that memory back before the downloads start); ``--fresh-process``
   measures them in a new ``imap2api serve`` on the same data directory instead (same figures).
2. MEMORY: after one unmeasured warm-up download, ``--rounds`` rounds of: the small attachment, the
   big one, the small message raw (``/raw/``), the big one raw. Each is downloaded with httpx
   streaming (``iter_bytes``) and checked (sha256 of the bytes equals the original's) while a
   thread samples the serve process's VmRSS (/proc/<pid>/status) every 10 ms; the peak is also read
   exactly as VmHWM, reset to the current RSS before each download (``echo 5 > /proc/<pid>/clear_refs``,
   Linux ≥ 4.0). Baseline = VmRSS once the process is idle, just before. The floor for throughput:
   the same partial FETCHes of 1 MiB and the same decoding (imap2api.sync.content) in the bench
   process, without HTTP.
3. SLOW CLIENT: the big attachment read at ``--slow-rate`` bytes per second (64 KiB/s) for
   ``--slow-seconds``; meanwhile a new message arrives and ``POST /api/imap-servers/{id}/sync/`` runs,
   timed against the same sync (one new message) with no download in progress. Also: the server's
   memory during the slow download (does it read ahead of the reader?), the bytes parked in the
   kernel's socket buffers, and whether the download's IMAP connection is gone once the reader
   hangs up.

Targets: for the attachment and for the raw message, the big download's peak increment ≤ 2 × the
small one's + 8 MB (memory does not grow with the size); the sync during the slow download succeeds
before the download ends, in ≤ max(3 × the idle sync, the idle sync + 2 s). Progress goes to stderr,
the figures to stdout. The exit status is 0 whatever the numbers.

Measured (2-core dev machine; SQLite; about 45 s), ``.venv/bin/python -m bench.downloads``:

    bench.downloads: 2 CPUs, load average 0.39
    SETUP: attachments of 1 MB and 25 MB (messages of 1.4 and 34.2 MB, base64)
      first sync 0.8 s; the server's peak RSS by then 440.6 MB
      downloads measured in the process that synced; RSS at start 148.3 MB
    MEMORY: serve's RSS sampled every 10 ms and its exact peak (VmHWM reset before each download)
      httpx iter_bytes; after a warm-up download (RSS then 154.7 MB); MB = 10^6 bytes
      download                 round  baseline    peak  increment   after    MB/s  samples  bytes ok
      attachment 1 MB              1     154.7   155.7       +1.0   154.8    27.4       24  yes
      attachment 25 MB             1     154.8   159.0       +4.2   158.4    59.7       61  yes
      raw message 1 MB             1     158.4   158.7       +0.3   158.7    57.3       22  yes
      raw message 25 MB            1     158.7   158.7       +0.0   158.7   150.1       43  yes
      attachment 1 MB              2     158.7   159.4       +0.7   159.4    31.1       23  yes
      attachment 25 MB             2     159.4   159.4       +0.0   159.4    63.2       59  yes
      raw message 1 MB             2     159.4   159.5       +0.0   159.5    51.7       23  yes
      raw message 25 MB            2     159.5   159.5       +0.0   159.5   150.7       42  yes
      attachment 1 MB              3     159.5   159.6       +0.1   159.6    29.5       23  yes
      attachment 25 MB             3     159.6   159.7       +0.1   159.7    63.8       58  yes
      raw message 1 MB             3     159.7   159.7       +0.0   159.7    51.6       23  yes
      raw message 25 MB            3     159.7   159.7       +0.0   159.7    94.3       55  yes
      attachment, largest increments: 1 MB +1.0 MB, 25 MB +4.2 MB (ratio 4.05)
        25 MB ≤ 2 × 1 MB + 8 MB = 10.1 MB   PASS
      raw message, largest increments: 1 MB +0.3 MB, 25 MB +0.0 MB (ratio 0.03)
        25 MB ≤ 2 × 1 MB + 8 MB = 8.6 MB   PASS
      bytes: 12 of 12 downloads equal the original (sha256)
      throughput, attachment 25 MB: best 63.8 MB/s over HTTP, floor 72.0 MB/s, ratio 0.89
        (floor: the same 1 MiB partial FETCHes and decoding in the bench process, no HTTP)
      RSS after all downloads 159.7 MB

    SLOW CLIENT: the 25 MB attachment read at 64 KiB/s for 15 s, then the reader hangs up
      sync (1 new message), no download        0.05 s   success, 1 new
      sync (1 new message), slow download on   0.06 s   success, 1 new
        the reader read 0 KiB meanwhile, and was still reading when the sync answered
        succeeded before the download's end, ≤ max(3 × idle, idle + 2 s) = 2.05 s   PASS
      the reader: 1.0 MB in 15.0 s (64 KiB/s)
      after the sync (the reader at 0.3 MB), in the kernel's socket buffers: the server's send queue
        3025 KiB, the reader's receive queue 625 KiB
      server RSS, slow download and sync: baseline 159.8 MB, peak 159.8 MB (+0.0 MB)
      serve's IMAP connections: 1 during the download (after the sync)
      after the reader hung up: 0 within 0.1 s
      serve.log: 0 × "Exception ignored in: <generator ...>"; Dovecot, whole run: 17 sessions logged out,
        2 closed without LOGOUT ("Connection closed")
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

# Targets (see the docstring).
TARGET_FACTOR = 2.0  # the big download's increment ≤ FACTOR × the small one's + SLACK
TARGET_SLACK_MB = 8.0
TARGET_SYNC_FACTOR = 3.0  # the sync during a slow download ≤ max(FACTOR × idle sync, idle + PLUS)
TARGET_SYNC_PLUS = 2.0

MB = 1_000_000
PASSWORD = "secret"
API_USER, API_PASSWORD = "bench", "bench-password-1"
SAMPLE_EVERY = 0.010
SERVE_STOP_SECONDS = 30.0


def say(text: str) -> None:
    """Progress, not results."""
    print(text, file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def mb(value: float) -> str:
    """Bytes as MB (10^6), one decimal."""
    return f"{value / MB:.1f}"


def with_attachment(subject: str, payload: bytes, filename: str) -> bytes:
    """A message (CRLF) with a short text and ``payload`` as a base64 attachment."""
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "bench@example.com", "you@example.org"
    message["Message-ID"] = f"<{secrets.token_hex(8)}@bench.example.com>"
    message.set_content(f"{subject}\n\nSee the attachment.\n")
    message.add_attachment(payload, maintype="application", subtype="octet-stream", filename=filename)
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# ------------------------------------------------------------------------------------------------
# imap2api serve, its memory, and the REST calls
# ------------------------------------------------------------------------------------------------


class Serve:
    """A real ``imap2api serve`` on SQLite in ``root``; stopped by ``close``."""

    def __init__(self, root: Path, settings: dict[str, str]) -> None:
        from tests.support.serve import start_serve

        self.root, self.settings = root, settings
        self.process, self.url = start_serve(root, **settings)
        self.pid = self.process.pid

    def env(self) -> dict[str, str]:
        """The environment of CLI commands on the same database."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
        env["IMAP2API_DATA_DIR"] = str(self.root / "data")
        env.update({f"IMAP2API_{name.upper()}": value for name, value in self.settings.items()})
        return env

    def log(self) -> str:
        """The server's log so far."""
        return (self.root / "serve.log").read_text(errors="replace")

    def cli(self, *args: str) -> None:
        """``imap2api <args>`` on the same database."""
        subprocess.run(
            [sys.executable, "-m", "imap2api.cli", *args], env=self.env(), check=True, capture_output=True
        )

    def status(self, name: str) -> int:
        """A ``kB`` line of /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
        with open(f"/proc/{self.pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(name.encode() + b":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(name)

    def rss(self) -> int:
        """VmRSS in bytes."""
        return self.status("VmRSS")

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (clear_refs 5); False if the kernel refuses."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> float:
        """User + system CPU time so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def quiet(self, *, below: float = 0.05, window: float = 0.5, seconds: float = 30.0) -> None:
        """Wait until the process uses less than ``below`` of a core over ``window`` s."""
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            before = self.cpu_seconds()
            time.sleep(window)
            if (self.cpu_seconds() - before) / window < below:
                return

    def connections_to(self, port: int) -> int:
        """Established TCP connections of the process to ``port`` (its IMAP connections)."""
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        return sum(
            1
            for _local, remote, state, _tx, _rx, inode in tcp_sockets()
            if state == "01" and remote == port and inode in inodes
        )

    def close(self) -> None:
        """SIGTERM the process group, SIGKILL if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=SERVE_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()


def tcp_sockets() -> list[tuple[int, int, str, int, int, str]]:
    """(local port, remote port, state, tx_queue, rx_queue, inode) of every IPv4 TCP socket."""
    rows = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            tx, rx = (int(value, 16) for value in parts[4].split(":"))
            local, remote = (int(address.split(":")[1], 16) for address in parts[1:3])
            rows.append((local, remote, parts[3], tx, rx, parts[9]))
    return rows


class Api:
    """The REST calls of the bench, as the bench user."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)
        self.login()

    def login(self) -> None:
        """A token for the bench user."""
        answer = self.http.post("/api-token-auth/", json={"username": API_USER, "password": API_PASSWORD})
        answer.raise_for_status()
        self.http.headers["Authorization"] = f"Token {answer.json()['token']}"

    def add_server(self, dovecot: Any, user: str) -> int:
        """The mailbox as an IMAP server (clear text: the Dovecot has no TLS)."""
        answer = self.http.post(
            "/api/imap-servers/",
            json={
                "name": "downloads bench",
                "host": dovecot.host,
                "port": dovecot.port,
                "username": user,
                "password": PASSWORD,
                "tls_mode": "none",
            },
        )
        answer.raise_for_status()
        return int(answer.json()["id"])

    def sync(self, server_id: int) -> tuple[dict[str, Any], float]:
        """Sync now (the request waits for the run): the answer and its duration."""
        started = time.monotonic()
        answer = self.http.post(f"/api/imap-servers/{server_id}/sync/", timeout=600)
        seconds = time.monotonic() - started
        answer.raise_for_status()
        return dict(answer.json()), seconds

    def details(self) -> dict[str, dict[str, Any]]:
        """Every email's detail, by subject."""
        answer = self.http.get("/api/emails/", params={"page_size": 100})
        answer.raise_for_status()
        found = {}
        for item in answer.json()["results"]:
            detail = self.http.get(f"/api/emails/{item['id']}/")
            detail.raise_for_status()
            found[item["subject"]] = detail.json()
        return found

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


# ------------------------------------------------------------------------------------------------
# Measuring one download
# ------------------------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """VmRSS of a process every SAMPLE_EVERY seconds until stopped: the peak."""

    def __init__(self, serve: Serve) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.serve = serve
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        while not self._halt.is_set():
            with contextlib.suppress(OSError, KeyError):
                self.peak = max(self.peak, self.serve.rss())
                self.samples += 1
            self._halt.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        """Stop sampling."""
        self._halt.set()
        self.join()


@dataclass
class Measure:
    """One download: its bytes, time, and the server's memory."""

    label: str
    size: int
    seconds: float
    baseline: int
    peak: int
    hwm: int | None
    after: int
    samples: int
    ok: bool

    @property
    def increment(self) -> int:
        """Peak − baseline: the exact VmHWM when there is one, else the sampled peak."""
        return max(self.hwm or 0, self.peak) - self.baseline

    @property
    def rate(self) -> float:
        """MB/s."""
        return self.size / MB / self.seconds if self.seconds else float("nan")


def download(
    serve: Serve, http: httpx.Client, url: str, digest: str, label: str, *, chunk: int | None = None
) -> Measure:
    """Stream ``url`` while sampling the server's RSS; check the bytes' sha256."""
    serve.quiet()
    baseline = serve.rss()
    exact = serve.reset_peak()
    sampler = RssSampler(serve)
    sampler.start()
    sha = hashlib.sha256()
    size = 0
    started = time.monotonic()
    try:
        with http.stream("GET", url) as answer:
            answer.raise_for_status()
            for piece in answer.iter_bytes(chunk):
                sha.update(piece)
                size += len(piece)
        seconds = time.monotonic() - started
        time.sleep(0.2)  # whatever the server frees or still holds once the answer is out
    finally:
        sampler.stop()
    hwm = serve.status("VmHWM") if exact else None
    return Measure(
        label, size, seconds, baseline, sampler.peak, hwm, serve.rss(), sampler.samples,
        sha.hexdigest() == digest,
    )  # fmt: skip


def floor_rate(dovecot: Any, user: str, subject: str, encoding: str) -> tuple[float, int]:
    """MB/s of the same partial FETCHes and decoding in this process (no HTTP): the big attachment."""
    from imap2api.sync.content import decoded, fetch_chunks

    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        (uid,) = client.search(["SUBJECT", subject])
        started = time.monotonic()
        size = sum(len(piece) for piece in decoded(fetch_chunks(client, uid, "2"), encoding))
        seconds = time.monotonic() - started
    return size / MB / seconds, size


# ------------------------------------------------------------------------------------------------
# The slow client
# ------------------------------------------------------------------------------------------------


class SlowReader(threading.Thread):
    """Reads ``url`` at ``rate`` bytes/s for ``seconds`` (or to the end), then hangs up."""

    def __init__(self, api: Api, url: str, rate: int, seconds: float) -> None:
        super().__init__(name="slow-reader", daemon=True)
        self.base_url, self.auth = str(api.http.base_url), api.http.headers["Authorization"]
        self.url, self.rate, self.seconds = url, rate, seconds
        self.got = 0
        self.done = False
        self.error = ""
        self.started_at = self.ended_at = 0.0
        self.reading = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        """Read slowly, then close the response unread."""
        self.started_at = time.monotonic()
        try:
            with httpx.Client(base_url=self.base_url, timeout=120) as http:
                http.headers["Authorization"] = self.auth
                with http.stream("GET", self.url) as answer:
                    answer.raise_for_status()
                    stream = answer.iter_raw(self.rate)
                    while time.monotonic() - self.started_at < self.seconds:
                        piece = next(stream, b"")
                        if not piece:
                            self.done = True
                            break
                        self.got += len(piece)
                        self.reading.set()
                        pause = self.started_at + self.got / self.rate - time.monotonic()  # keep to the rate
                        if pause > 0:
                            time.sleep(pause)
        except Exception as exc:  # noqa: BLE001 - reported
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended_at = time.monotonic()
            self.reading.set()
            self.ended.set()


def slow_client(
    serve: Serve, api: Api, dovecot: Any, user: str, server_id: int, url: str, args: argparse.Namespace
) -> list[str]:
    """A sync while the big attachment is read slowly, against the same sync without the download."""
    tag = secrets.token_hex(3)
    dovecot.add_message(user, "INBOX", with_attachment(f"slow bench idle {tag}", b"x" * 100, "a.bin"))
    idle_run, idle_seconds = api.sync(server_id)
    say(f"slow: sync with no download {idle_seconds:.2f} s, {idle_run.get('messages_new')} new")

    serve.quiet()
    baseline = serve.rss()
    exact = serve.reset_peak()
    port = int(serve.url.rsplit(":", 1)[1])
    sampler = RssSampler(serve)
    sampler.start()
    reader = SlowReader(api, url, args.slow_rate, args.slow_seconds)
    reader.start()
    try:
        reader.reading.wait(30)
        time.sleep(min(3.0, args.slow_seconds / 4))
        dovecot.add_message(user, "INBOX", with_attachment(f"slow bench during {tag}", b"y" * 100, "b.bin"))
        got_before = reader.got
        during_run, during_seconds = api.sync(server_id)
        in_progress = not reader.ended.is_set()
        got_during = reader.got - got_before
        say(
            f"slow: sync during the slow download {during_seconds:.2f} s, "
            f"{during_run.get('messages_new')} new"
        )
        imap_during = serve.connections_to(dovecot.port)
        # bytes in the kernel between server and reader: the server's send queue, the reader's receive queue
        sockets = [row for row in tcp_sockets() if row[2] == "01"]
        server_queue = sum(tx for local, _remote, _s, tx, _rx, _i in sockets if local == port)
        reader_queue = sum(rx for _local, remote, _s, _tx, rx, _i in sockets if remote == port)
        got_then = reader.got
        reader.ended.wait(args.slow_seconds + 30)
    finally:
        reader.ended.wait(args.slow_seconds + 30)
        sampler.stop()
    hwm = serve.status("VmHWM") if exact else None
    hung_up = time.monotonic()
    while serve.connections_to(dovecot.port) and time.monotonic() - hung_up < args.linger_seconds:
        time.sleep(0.1)
    imap_after = serve.connections_to(dovecot.port)
    closed_after = time.monotonic() - hung_up
    if imap_after:  # does another request end it?
        api.http.get("/api/emails/", params={"page_size": 1}).raise_for_status()
        time.sleep(1.0)
    imap_next = serve.connections_to(dovecot.port)
    ignored = serve.log().count("Exception ignored in: <generator")
    dovecot_log = dovecot.log_path.read_text(errors="replace")
    unclean = dovecot_log.count("Disconnected: Connection closed")
    logged_out = dovecot_log.count("Disconnected: Logged out")
    peak = max(hwm or 0, sampler.peak)
    read_seconds = reader.ended_at - reader.started_at
    limit = max(TARGET_SYNC_FACTOR * idle_seconds, idle_seconds + TARGET_SYNC_PLUS)
    ok = during_run.get("status") == "success" and in_progress and during_seconds <= limit
    return [
        f"SLOW CLIENT: the {args.big_mb:g} MB attachment read at {args.slow_rate / 1024:g} KiB/s for "
        f"{args.slow_seconds:g} s, then the reader hangs up",
        f"  sync (1 new message), no download      {idle_seconds:6.2f} s   {idle_run.get('status')}, "
        f"{idle_run.get('messages_new')} new",
        f"  sync (1 new message), slow download on {during_seconds:6.2f} s   {during_run.get('status')}, "
        f"{during_run.get('messages_new')} new",
        f"    the reader read {got_during / 1024:.0f} KiB meanwhile, and was "
        f"{'still reading' if in_progress else 'DONE'} when the sync answered",
        f"    succeeded before the download's end, ≤ max({TARGET_SYNC_FACTOR:g} × idle, idle + "
        f"{TARGET_SYNC_PLUS:g} s) = {limit:.2f} s   {verdict(ok)}",
        f"  the reader: {mb(reader.got)} MB in {read_seconds:.1f} s "
        f"({reader.got / 1024 / read_seconds:.0f} KiB/s)"
        + (f", error {reader.error}" if reader.error else "")
        + (", reached the end" if reader.done else ""),
        f"  after the sync (the reader at {mb(got_then)} MB), in the kernel's socket buffers: the server's "
        f"send queue",
        f"    {server_queue / 1024:.0f} KiB, the reader's receive queue {reader_queue / 1024:.0f} KiB",
        f"  server RSS, slow download and sync: baseline {mb(baseline)} MB, peak {mb(peak)} MB "
        f"({(peak - baseline) / MB:+.1f} MB){'' if exact else ' (sampled)'}",
        f"  serve's IMAP connections: {imap_during} during the download (after the sync)",
        "  after the reader hung up: "
        + (
            f"{imap_after} still open {args.linger_seconds:g} s later, {imap_next} 1 s after another request"
            if imap_after
            else f"0 within {closed_after:.1f} s"
        ),
        f'  serve.log: {ignored} × "Exception ignored in: <generator ...>"; Dovecot, whole run: '
        f"{logged_out} sessions logged out,",
        f'    {unclean} closed without LOGOUT ("Connection closed")',
    ]


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def settings_of() -> dict[str, str]:
    """The IMAP2API_* settings of the bench's server."""
    return {
        "secret_key": "bench-" + secrets.token_hex(16),
        "scheduler_enabled": "false",
        "watch_enabled": "false",
        "rate_limit_enabled": "false",
        "sync_max_message_bytes": "40000000",
        "log_level": "INFO",
    }


def memory_lines(rounds: list[list[Measure]], small: str, big: str) -> list[str]:
    """Per download: baseline, peak, increment, rate; then the verdicts."""
    lines = [
        "  download                 round  baseline    peak  increment   after    MB/s  samples  bytes ok"
    ]
    for number, measures in enumerate(rounds, 1):
        for m in measures:
            lines.append(
                f"  {m.label:<24} {number:>5}  {mb(m.baseline):>8} {mb(max(m.hwm or 0, m.peak)):>7} "
                f"{m.increment / MB:>+10.1f} {mb(m.after):>7} {m.rate:>7.1f} {m.samples:>8}  "
                f"{'yes' if m.ok else 'NO'}"
            )
    for kind in ("attachment", "raw message"):
        small_inc, big_inc = (
            max(m.increment for measures in rounds for m in measures if m.label == f"{kind} {size}")
            for size in (small, big)
        )
        limit = TARGET_FACTOR * max(small_inc, 0) + TARGET_SLACK_MB * MB
        ratio = f"{big_inc / small_inc:.2f}" if small_inc >= 0.1 * MB else "n/a: the small one is < 0.1 MB"
        lines.append(
            f"  {kind}, largest increments: {small} {small_inc / MB:+.1f} MB, {big} {big_inc / MB:+.1f} MB "
            f"(ratio {ratio})"
        )
        lines.append(
            f"    {big} ≤ {TARGET_FACTOR:g} × {small} + {TARGET_SLACK_MB:g} MB "
            f"= {limit / MB:.1f} MB   {verdict(big_inc <= limit)}"
        )
    every = [m.ok for measures in rounds for m in measures]
    lines.append(f"  bytes: {sum(every)} of {len(every)} downloads equal the original (sha256)")
    return lines


def run(args: argparse.Namespace, root: Path) -> list[str]:
    """Setup, memory, slow client."""
    from tests.support.dovecot import DovecotServer

    lines: list[str] = []
    rng = random.Random(args.seed)
    small, big = f"{args.small_mb:g} MB", f"{args.big_mb:g} MB"
    payloads = {small: rng.randbytes(int(args.small_mb * MB)), big: rng.randbytes(int(args.big_mb * MB))}
    raws = {
        size: with_attachment(f"download {size}", data, f"{size}.bin".replace(" ", ""))
        for size, data in payloads.items()
    }
    with contextlib.ExitStack() as stack:
        say("setup: Dovecot, two messages, imap2api serve")
        dovecot = stack.enter_context(DovecotServer(tls=False))
        user = dovecot.add_user()
        for size in (small, big):
            dovecot.add_message(user, "INBOX", raws[size])
        settings = settings_of()
        serve = Serve(root, settings)
        stack.callback(lambda: serve.close())
        serve.cli("createuser", API_USER, "--password", API_PASSWORD)
        api = Api(serve.url)
        stack.callback(api.close)
        server_id = api.add_server(dovecot, user)
        run_answer, sync_seconds = api.sync(server_id)
        sync_hwm = serve.status("VmHWM")
        details = api.details()
        say(f"setup: sync {run_answer.get('status')} in {sync_seconds:.1f} s, {len(details)} emails")
        urls: dict[str, tuple[str, str]] = {}
        for size in (small, big):
            detail = details[f"download {size}"]
            (attached,) = detail["attachments"]
            if attached["size"] != len(payloads[size]):
                raise RuntimeError(f"attachment {size}: size {attached['size']}, not {len(payloads[size])}")
            urls[f"attachment {size}"] = (
                attached["download_url"],
                hashlib.sha256(payloads[size]).hexdigest(),
            )
            urls[f"raw message {size}"] = (
                f"/api/emails/{detail['id']}/raw/",
                hashlib.sha256(raws[size]).hexdigest(),
            )
        lines.append(
            f"SETUP: attachments of {small} and {big} (messages of {mb(len(raws[small]))} and "
            f"{mb(len(raws[big]))} MB, base64)"
        )
        lines.append(f"  first sync {sync_seconds:.1f} s; the server's peak RSS by then {mb(sync_hwm)} MB")
        if args.fresh_process:
            serve.close()
            serve = Serve(root, settings)
            api.close()
            api = Api(serve.url)
            stack.callback(api.close)
            say("setup: a fresh imap2api serve for the downloads")
        lines.append(
            "  downloads measured in "
            + ("a fresh serve process (same database)" if args.fresh_process else "the process that synced")
            + f"; RSS at start {mb(serve.rss())} MB"
        )

        say("memory: warm-up")
        download(serve, api.http, *urls[f"attachment {small}"], "warm-up")
        labels = [f"attachment {small}", f"attachment {big}", f"raw message {small}", f"raw message {big}"]
        first_rss = serve.rss()
        rounds = []
        for number in range(args.rounds):
            measures = []
            for label in labels:
                measures.append(download(serve, api.http, *urls[label], label))
                m = measures[-1]
                say(
                    f"memory: round {number + 1} {label}: {m.increment / MB:+.1f} MB, "
                    f"{m.rate:.1f} MB/s, bytes ok {m.ok}"
                )
            rounds.append(measures)
        floor, floor_size = floor_rate(dovecot, user, f"download {big}", "base64")
        big_rates = [m.rate for r in rounds for m in r if m.label == f"attachment {big}"]
        exact = rounds[0][0].hwm is not None
        lines.append(
            f"MEMORY: serve's RSS sampled every {SAMPLE_EVERY * 1000:g} ms"
            + (" and its exact peak (VmHWM reset before each download)" if exact else " (no VmHWM reset)")
        )
        lines.append(
            f"  httpx iter_bytes; after a warm-up download (RSS then {mb(first_rss)} MB); MB = 10^6 bytes"
        )
        lines += memory_lines(rounds, small, big)
        best = max(big_rates)
        lines.append(
            f"  throughput, attachment {big}: best {best:.1f} MB/s over HTTP, floor {floor:.1f} MB/s, "
            f"ratio {best / floor:.2f}"
        )
        lines.append("    (floor: the same 1 MiB partial FETCHes and decoding in the bench process, no HTTP)")
        if floor_size != len(payloads[big]):
            lines.append(f"  floor decoded {floor_size} bytes, not {len(payloads[big])}")
        lines.append(f"  RSS after all downloads {mb(serve.rss())} MB")
        lines.append("")

        say("slow: a slow reader and a sync")
        lines += slow_client(serve, api, dovecot, user, server_id, urls[f"attachment {big}"][0], args)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; 0 whatever they say."""
    parser = argparse.ArgumentParser(prog="python -m bench.downloads", description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=float, default=1.0, help="the small attachment, MB (1)")
    parser.add_argument("--big-mb", type=float, default=25.0, help="the big attachment, MB (25)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of the four downloads (3)")
    parser.add_argument("--slow-rate", type=int, default=64 * 1024, help="slow reader, bytes/s (65536)")
    parser.add_argument("--slow-seconds", type=float, default=15.0, help="how long it reads (15)")
    parser.add_argument(
        "--linger-seconds",
        type=float,
        default=10.0,
        help="wait for the hung-up download's IMAP connection (10)",
    )
    parser.add_argument(
        "--fresh-process", action="store_true", help="measure in a new server, not in the one that synced"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (serve.log, SQLite)")
    args = parser.parse_args(argv)

    from tests.support.dovecot import find_dovecot

    if find_dovecot() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 0
    print(f"bench.downloads: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="imap2api-bench-downloads-"))
    lines: list[str] = []
    try:
        lines = run(args, root)
    except Exception as exc:  # noqa: BLE001 - reported with what was measured
        import traceback

        traceback.print_exc()
        lines.append(f"failed: {type(exc).__name__}: {exc} (log: {root}/serve.log)")
    finally:
        print("\n".join(lines), flush=True)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
