"""Sending benchmark: messages through ``POST /api/emails/send/`` against the same work done raw.

Run ``.venv/bin/python -m bench.sending [--messages 100] [--concurrency 4] [--big-mb 20]
[--worker-threads W]`` from the project root (it imports ``tests.support`` and reuses bench.downloads'
``Serve``, ``Api``, ``RssSampler`` and settings, and bench.push's ``percentile``; nothing is copied).
Everything is throw-away: Dovecot in a temp dir (tests/support/dovecot.py, clear text, as
bench.downloads), an SMTP submission server in this process (tests/support/smtp.py's ``SmtpServer``:
aiosmtpd, STARTTLS required, AUTH), and a real ``imap2api serve`` subprocess (embedded worker) on
SQLite in a temp dir, trusting the SMTP server's certificate (``IMAP2API_IMAP_CA_FILE``), with the
scheduler and the watch off, the send rate raised (``SEND_RATE_LIMIT``) and room for the big message
(``SEND_MAX_MESSAGE_BYTES``, ``SYNC_MAX_MESSAGE_BYTES``). The IMAP server is added and synced once
over REST, then given its SMTP settings (``smtp_host``/``smtp_port``/``smtp_security`` starttls/
``smtp_username``/``smtp_password``/``email_address``, with ``password``). The floor works on another
Dovecot user, so that imap2api's syncs of Sent never see its copies. One unmeasured message each way
warms up both paths first. ``--worker-threads`` sets the serve's ``EMBEDDED_WORKER_THREADS`` (default:
imap2api's own, 2: at most two messages are being sent at a time).

1. THROUGHPUT: N messages (``--messages``), each a short text and a 20 KB attachment (random bytes) in
   JSON (base64), posted one after another by K threads (``--concurrency``), until every one is
   ``sent`` with ``sent_copy`` ``saved`` (every 0.2 s the counts of ``queued`` and ``sending`` in the
   outbox list, a page of one each, then the whole list once nothing is left to send). The floor: the same N
   messages done raw here on K threads: per message an smtplib connection (STARTTLS with certificate
   verification, AUTH, sendmail of the same kind of message, QUIT) and an imapclient connection (login,
   APPEND to Sent with ``\\Seen``, logout). imap2api does more (composing, the outbox row, the job, the
   sync of Sent that mirrors the copy): the target allows for it. Target: imap2api's time ≤ 3 × the
   floor's.
2. LATENCY: N messages posted one at a time (K=1), each once the previous one is sent and saved:
   from the POST until the SMTP server had the message (the time its handler took it, stamped by a
   wrapper around the test server's ``handle_DATA``: tests/support/smtp.py records no times, so this
   reaches into its private ``_handler``), against the floor's per-message SMTP time (from
   connecting until the same handler took it) in a sequential floor run (K=1) of N messages. Targets:
   p50 ≤ floor p50 + 0.3 s, p95 ≤ floor p95 + 1 s (the worker's jobs lane polls every 0.1 s).
3. MEMORY: one message with a ``--big-mb`` MB attachment as a multipart/form-data upload, the server's
   ``save_sent`` off, so that the measure is the request and the send only: the serve process's VmHWM,
   reset before the POST (``clear_refs``, as bench.downloads), and its VmRSS sampled every 10 ms, until
   the outbox says ``sent``; the increment over the idle RSS, against the composed message's size
   (the outbox ``size``). Target ≤ 8 × the message size: the request, its base64, the composed bytes
   and the stored row are each held once or twice. Then, for information, the same with ``save_sent``
   on: the peak up to ``sent_copy`` ``saved`` (APPEND to Sent and the sync that mirrors the copy).

Progress goes to stderr, the figures to stdout; each target with PASS or FAIL. The exit status is 0
whatever the numbers. About 75 s with the defaults on an idle 2-core machine. The test SMTP server
answers EHLO line by line (one write per line: Nagle and the client's delayed ACK hold each EHLO about
40 ms), so an SMTP transaction takes about 90 ms however fast both ends are; imap2api and the floor pay
it alike, and the floor's two EHLOs are printed.

Measured (2-core dev machine; SQLite; 70 s; a bench.push run idling beside it, load average 1.4),
``.venv/bin/python -m bench.sending``:

    bench.sending: 2 CPUs, load average 1.39, 8.14, 21.26
    THROUGHPUT: 100 messages, text + 20 KB attachment (28.1 KB composed; the floor's 28.1 KB), K=4 threads
      imap2api (POST → sent and saved)      11.90 s    8.4 messages/s
        all posted after 1.92 s; POST p50 64 ms, p95 128 ms
        serve CPU 7.5 s: 75 ms a message (39 outbox polls included)
      floor (smtplib + imapclient APPEND)    3.10 s   32.2 messages/s
      imap2api's time ÷ the floor's 3.84   ≤ 3   FAIL

    LATENCY: 100 messages one at a time (each once the previous one is sent and saved),
      until the SMTP server's handler took it
                                              p50      p95      max
      imap2api POST → SMTP server          0.119s   0.134s   0.143s
      floor connect → SMTP server          0.093s   0.099s   0.110s
      imap2api POST (its answer)           0.021s   0.033s   0.039s
      imap2api POST → sent and saved       0.217s   0.307s   0.423s
      p50 0.119 s ≤ floor p50 + 0.3 s = 0.393 s   PASS
      p95 0.134 s ≤ floor p95 + 1 s = 1.099 s   PASS
      sequential rate: imap2api 4.2 messages/s sent and saved (serve CPU 93 ms a message),
        the floor 8.8 messages/s
      the floor's two EHLOs: p50 85 ms of its SMTP time (the test server answers EHLO line
        by line: Nagle and delayed ACK), for imap2api as for the floor

    MEMORY: one 20 MB attachment as multipart/form-data (27.4 MB composed);
      serve's RSS every 10 ms and its exact peak (VmHWM reset before the POST); MB
                                      baseline   peak  increment × size  after  POST s total s
      request + send (save_sent off)     155.8  470.0     +314.2  11.48  349.9    1.33    3.25
      + filing in Sent (save_sent on)    349.9  657.1     +307.2  11.22  463.6    1.31    5.46
        by the POST's answer (sampled): +199.9 MB; the rest is the worker's send
      request + send: +314.2 MB ≤ 8 × 27.4 MB = 219.0 MB   FAIL
    load average at the end 1.44, 6.74, 19.81

Reading it: the latency is the floor's plus about 25 ms (the POST, the job's pickup, the outbox row's
claim and updates). The throughput misses its target: the serve spends about 75-95 ms of CPU on each
message (the request and composition, the job, then filing the copy: an IMAP login, LIST, APPEND and the
sync of Sent that mirrors it, each under the server's sync lease, so one at a time per server), in one
Python process; and at most EMBEDDED_WORKER_THREADS (2) messages are sent at once, where the floor
sends 4 (``--worker-threads 4``: 8.7 messages/s, ratio 3.73, so that is not the main limit). The big
message costs about 11.5 × its size at the peak, two thirds of it by the time the POST has answered
(the multipart file is base64-encoded for the GraphQL operation and decoded again before composing),
and the RSS stays far above the baseline afterwards, growing with each big message (+218, +133, +82,
+111, +28 MB over five in a row, save_sent off); mostly glibc keeping freed big buffers: with
``MALLOC_MMAP_THRESHOLD_=131072`` in the serve's environment it grows by about 30 MB a message.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import re
import secrets
import shutil
import smtplib
import ssl
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import httpx

from bench.downloads import (
    API_PASSWORD,
    API_USER,
    MB,
    PASSWORD,
    Api,
    RssSampler,
    Serve,
    mb,
    say,
    settings_of,
    verdict,
)
from bench.push import percentile

# Targets (see the docstring).
TARGET_TIME_FACTOR = 3.0  # imap2api's time for N messages ≤ FACTOR × the floor's
TARGET_P50_PLUS = 0.3  # POST → SMTP server p50 ≤ the floor's p50 + PLUS seconds
TARGET_P95_PLUS = 1.0  # likewise p95
TARGET_MEMORY_FACTOR = 8.0  # peak RSS increment of the big message ≤ FACTOR × its size

ATTACHMENT_BYTES = 20_000
SMTP_LOGIN, SMTP_PASSWORD = "bench@example.test", "smtp-bench-secret"
SENDER, RECIPIENT = "ann@example.test", "bob@example.org"
POLL_EVERY = 0.2  # the throughput phase's outbox list polls
SETTLE_POLL = 0.05  # the latency and memory phases' polls of one outbox message
TIMEOUT = 120.0  # seconds for any one phase's message to get through
TOKEN = re.compile(rb"sb-[0-9a-f]{6}-[a-z]+-\d+")


def text_of(token: str) -> str:
    """The message's text."""
    return f"Hello Bob,\n\nthe figures of {token} are attached.\n\nAnn\n"


# ------------------------------------------------------------------------------------------------
# The SMTP server: when its handler took each message
# ------------------------------------------------------------------------------------------------


class Receipts:
    """Wraps the test SMTP server's ``handle_DATA`` to stamp (time.time()) each message it takes, by the
    token in its Subject. tests/support/smtp.py records no times: this reaches into its private handler."""

    def __init__(self, smtp: Any) -> None:
        handler = smtp._handler  # private: see the docstring
        original = handler.handle_DATA
        self.at: dict[str, float] = {}
        self._cond = threading.Condition()

        async def handle_DATA(server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook
            answer = await original(server, session, envelope)
            now = time.time()
            found = TOKEN.search((envelope.original_content or b"")[:8192])
            if answer.startswith("250") and found:
                with self._cond:
                    self.at.setdefault(found.group().decode(), now)
                    self._cond.notify_all()
            return str(answer)

        handler.handle_DATA = handle_DATA  # aiosmtpd reads the hooks off the handler at each connection

    def wait(self, token: str, timeout: float = TIMEOUT) -> float:
        """When the message with ``token`` was taken; TimeoutError if not within ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: token in self.at, timeout):
                raise TimeoutError(f"the SMTP server did not get {token} within {timeout:g} s")
            return self.at[token]


# ------------------------------------------------------------------------------------------------
# The floor: the same work, raw, in this process
# ------------------------------------------------------------------------------------------------


def floor_message(token: str, payload: bytes) -> bytes:
    """A message like the one imap2api composes from the same request (text + base64 attachment)."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, RECIPIENT, f"Figures {token}"
    message["Date"], message["Message-ID"] = formatdate(localtime=False), make_msgid(domain="example.test")
    message["MIME-Version"] = "1.0"
    message.set_content(text_of(token))
    message.add_attachment(payload, maintype="application", subtype="octet-stream", filename="figures.bin")
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass
class Floor:
    """One raw run: its wall time, each message's SMTP time (connect → the handler took it), its size."""

    seconds: float
    smtp_times: list[float]
    ehlo_times: list[float]  # the two EHLOs of each SMTP connection
    size: int


def floor_run(
    smtp: Any, receipts: Receipts, dovecot: Any, user: str, n: int, threads: int, payload: bytes, label: str
) -> Floor:
    """N messages raw on ``threads`` threads: SMTP (STARTTLS, AUTH, sendmail, QUIT), then IMAP (login,
    APPEND to Sent, logout), each on a new connection."""
    tag = secrets.token_hex(3)
    raws = [floor_message(f"sb-{tag}-{label}-{number}", payload) for number in range(n)]

    def one(number: int) -> tuple[float, float]:
        token, raw = f"sb-{tag}-{label}-{number}", raws[number]
        started = time.time()
        context = ssl.create_default_context(cafile=str(smtp.ca_cert_path))  # as imap2api: one per send
        with smtplib.SMTP(smtp.host, smtp.port, local_hostname="localhost", timeout=30) as client:
            ehlo = time.monotonic()
            client.ehlo()  # what starttls() and login() would send anyway, timed
            ehlo = time.monotonic() - ehlo
            client.starttls(context=context)
            again = time.monotonic()
            client.ehlo()
            ehlo += time.monotonic() - again
            client.login(SMTP_LOGIN, SMTP_PASSWORD)
            client.sendmail(SENDER, [RECIPIENT], raw)
        took = receipts.wait(token) - started
        with dovecot.client(user) as imap:
            imap.append("Sent", raw, flags=[b"\\Seen"])
        return took, ehlo

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        times = list(pool.map(one, range(n)))
    seconds = time.monotonic() - started
    return Floor(seconds, [took for took, _ in times], [ehlo for _, ehlo in times], len(raws[0]))


# ------------------------------------------------------------------------------------------------
# imap2api: sending, and waiting for the outbox
# ------------------------------------------------------------------------------------------------


def configure_smtp(api: Api, server_id: int, smtp: Any, **extra: Any) -> None:
    """The server's SMTP settings (the IMAP password too: changing them needs it)."""
    answer = api.http.patch(
        f"/api/imap-servers/{server_id}/",
        json={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_security": "starttls",
            "smtp_username": SMTP_LOGIN,
            "smtp_password": SMTP_PASSWORD,
            "email_address": SENDER,
            "password": PASSWORD,
            **extra,
        },
    )
    if answer.status_code != 200:
        raise RuntimeError(f"PATCH of the SMTP settings: {answer.status_code} {answer.text[:300]}")


def client_like(api: Api) -> httpx.Client:
    """Another HTTP client with the same token (one per posting thread)."""
    return httpx.Client(base_url=api.http.base_url, headers=api.http.headers, timeout=300)


def post_json(http: httpx.Client, server_id: int, token: str, payload: bytes) -> dict[str, Any]:
    """POST one small message (JSON, the attachment in base64): the queued outbox message."""
    answer = http.post(
        "/api/emails/send/",
        json={
            "imap_server": server_id,
            "to": [RECIPIENT],
            "subject": f"Figures {token}",
            "text": text_of(token),
            "attachments": [
                {
                    "filename": "figures.bin",
                    "content_type": "application/octet-stream",
                    "content_base64": base64.b64encode(payload).decode("ascii"),
                }
            ],
        },
    )
    if answer.status_code != 202:
        raise RuntimeError(f"POST /api/emails/send/: {answer.status_code} {answer.text[:300]}")
    return dict(answer.json())


def post_multipart(http: httpx.Client, server_id: int, token: str, payload: bytes) -> dict[str, Any]:
    """POST one message as multipart/form-data, the attachment as a file."""
    answer = http.post(
        "/api/emails/send/",
        data={
            "imap_server": str(server_id),
            "to": RECIPIENT,
            "subject": f"Big {token}",
            "text": text_of(token),
        },
        files=[("attachments", ("big.bin", payload, "application/octet-stream"))],
    )
    if answer.status_code != 202:
        raise RuntimeError(f"POST /api/emails/send/ (multipart): {answer.status_code} {answer.text[:300]}")
    return dict(answer.json())


def failed(item: dict[str, Any]) -> bool:
    """A message that will not get through (or whose copy will not be filed)."""
    return item["status"] in ("failed", "cancelled") or item.get("sent_copy") == "failed"


def done(item: dict[str, Any], copy: bool) -> bool:
    """Sent, and (``copy``) its copy saved."""
    return item["status"] == "sent" and (not copy or item.get("sent_copy") == "saved")


def wait_settled(http: httpx.Client, outbox_id: int, *, copy: bool = True) -> dict[str, Any]:
    """The outbox message once it is sent (and saved, with ``copy``); RuntimeError if it fails."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        item = http.get(f"/api/outbox/{outbox_id}/").json()
        if failed(item):
            raise RuntimeError(f"outbox message {outbox_id}: {item['status']}, {item.get('error')}")
        if done(item, copy):
            return dict(item)
        if time.monotonic() > deadline:
            raise TimeoutError(f"outbox message {outbox_id}: still {item['status']} after {TIMEOUT:g} s")
        time.sleep(SETTLE_POLL)


def outbox_count(http: httpx.Client, status: str) -> int:
    """How many of the user's outbox messages have ``status`` (a page of one: the count)."""
    answer = http.get("/api/outbox/", params={"status": status, "page_size": 1})
    answer.raise_for_status()
    return int(answer.json()["count"])


def count_done(http: httpx.Client, ids: set[int]) -> int:
    """How many of ``ids`` are sent and saved (every page of the outbox list)."""
    count, page = 0, 1
    while True:
        answer = http.get("/api/outbox/", params={"page_size": 100, "page": page})
        answer.raise_for_status()
        body = answer.json()
        for item in body["results"]:
            if item["id"] in ids:
                if failed(item):
                    raise RuntimeError(f"outbox message {item['id']}: {item['status']}, {item.get('error')}")
                count += done(item, True)
        if not body.get("next"):
            return count
        page += 1


@dataclass
class Throughput:
    """imap2api's run of N messages on K threads."""

    seconds: float
    posted_seconds: float  # until the last POST answered
    post_times: list[float]
    size: int
    polls: int


def imap2api_throughput(api: Api, server_id: int, n: int, threads: int, payload: bytes) -> Throughput:
    """N messages posted by K threads, one after another each, until all are sent and saved."""
    tag = secrets.token_hex(3)
    clients = [client_like(api) for _ in range(threads)]
    post_times: list[float] = []
    ids: set[int] = set()
    sizes: list[int] = []
    polls: list[float] = []
    lock = threading.Lock()

    def poster(index: int) -> None:
        for number in range(index, n, threads):
            began = time.monotonic()
            item = post_json(clients[index], server_id, f"sb-{tag}-tput-{number}", payload)
            with lock:
                post_times.append(time.monotonic() - began)
                ids.add(int(item["id"]))
                sizes.append(int(item["size"]))

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(poster, range(threads)))
        posted = time.monotonic() - started
        say(f"throughput: {n} posted in {posted:.1f} s")
        deadline = time.monotonic() + TIMEOUT
        last = -1
        while True:
            # Counts first (page_size 1: cheap for the serve), the full list once none is left to send.
            polls.append(time.monotonic())
            unsent = sum(outbox_count(api.http, status) for status in ("queued", "sending"))
            if outbox_count(api.http, "failed"):
                raise RuntimeError("throughput: an outbox message failed")
            if not unsent and count_done(api.http, ids) == n:
                break
            if (n - unsent) // 20 != last // 20:
                say(f"throughput: {n - unsent}/{n} sent after {time.monotonic() - started:.1f} s")
            last = n - unsent
            if time.monotonic() > deadline:
                raise TimeoutError(f"throughput: not all sent and saved after {TIMEOUT:g} s more")
            time.sleep(POLL_EVERY)
        seconds = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    return Throughput(seconds, posted, post_times, max(sizes), len(polls))


@dataclass
class Latency:
    """imap2api's sequential run: per message, POST → the SMTP server had it, and → sent and saved."""

    to_smtp: list[float]
    post_times: list[float]
    to_saved: list[float]
    seconds: float


def imap2api_latency(api: Api, receipts: Receipts, server_id: int, n: int, payload: bytes) -> Latency:
    """N messages posted one at a time, each once the previous one is sent and saved."""
    tag = secrets.token_hex(3)
    to_smtp, post_times, to_saved = [], [], []
    started = time.monotonic()
    for number in range(n):
        token = f"sb-{tag}-lat-{number}"
        sent_at, began = time.time(), time.monotonic()
        item = post_json(api.http, server_id, token, payload)
        post_times.append(time.monotonic() - began)
        to_smtp.append(receipts.wait(token) - sent_at)
        wait_settled(api.http, int(item["id"]))
        to_saved.append(time.monotonic() - began)
        if (number + 1) % 20 == 0:
            say(f"latency: {number + 1}/{n}, last POST → SMTP {to_smtp[-1]:.3f} s")
    return Latency(to_smtp, post_times, to_saved, time.monotonic() - started)


@dataclass
class Memory:
    """The big message: the serve's memory from the POST until it was sent (and saved)."""

    size: int
    baseline: int
    at_answer: int  # the sampled peak when the POST answered
    peak: int  # VmHWM (or the sampled peak) at the end
    after: int
    post_seconds: float
    seconds: float
    samples: int
    exact: bool

    @property
    def increment(self) -> int:
        """Peak − baseline."""
        return self.peak - self.baseline


def big_message(
    serve: Serve, api: Api, receipts: Receipts, server_id: int, payload: bytes, copy: bool
) -> Memory:
    """One multipart upload of ``payload`` while the serve's memory is sampled, until sent (and saved)."""
    token = f"sb-{secrets.token_hex(3)}-big-{int(copy)}"
    serve.quiet()
    baseline = serve.rss()
    exact = serve.reset_peak()
    sampler = RssSampler(serve)
    sampler.start()
    started = time.monotonic()
    try:
        item = post_multipart(api.http, server_id, token, payload)
        post_seconds = time.monotonic() - started
        at_answer = sampler.peak
        receipts.wait(token)
        item = wait_settled(api.http, int(item["id"]), copy=copy)
        seconds = time.monotonic() - started
        time.sleep(0.2)  # whatever is still held once it is done
    finally:
        sampler.stop()
    peak = max(serve.status("VmHWM") if exact else 0, sampler.peak)
    return Memory(
        int(item["size"]),
        baseline,
        at_answer,
        peak,
        serve.rss(),
        post_seconds,
        seconds,
        sampler.samples,
        exact,
    )


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def throughput_lines(n: int, k: int, tput: Throughput, floor: Floor, cpu: float) -> list[str]:
    """Phase 1's figures."""
    ratio = tput.seconds / floor.seconds
    post50, post95 = (percentile(tput.post_times, q) * 1000 for q in (50, 95))
    return [
        f"THROUGHPUT: {n} messages, text + {ATTACHMENT_BYTES // 1000} KB attachment ({tput.size / 1000:.1f} "
        f"KB composed; the floor's {floor.size / 1000:.1f} KB), K={k} threads",
        f"  {'imap2api (POST → sent and saved)':36} {tput.seconds:6.2f} s {n / tput.seconds:6.1f} messages/s",
        f"    all posted after {tput.posted_seconds:.2f} s; POST p50 {post50:.0f} ms, p95 {post95:.0f} ms",
        f"    serve CPU {cpu:.1f} s: {cpu / n * 1000:.0f} ms a message ({tput.polls} outbox polls included)",
        f"  {'floor (smtplib + imapclient APPEND)':36} {floor.seconds:6.2f} s "
        f"{n / floor.seconds:6.1f} messages/s",
        f"  imap2api's time ÷ the floor's {ratio:.2f}   ≤ {TARGET_TIME_FACTOR:g}   "
        f"{verdict(ratio <= TARGET_TIME_FACTOR)}",
        "",
    ]


def latency_lines(n: int, lat: Latency, floor: Floor, cpu: float) -> list[str]:
    """Phase 2's figures."""
    floor50, floor95 = percentile(floor.smtp_times, 50), percentile(floor.smtp_times, 95)
    p50, p95 = percentile(lat.to_smtp, 50), percentile(lat.to_smtp, 95)
    lines = [
        f"LATENCY: {n} messages one at a time (each once the previous one is sent and saved),",
        "  until the SMTP server's handler took it",
        f"  {'':34} {'p50':>8} {'p95':>8} {'max':>8}",
    ]
    rows = [
        ("imap2api POST → SMTP server", lat.to_smtp),
        ("floor connect → SMTP server", floor.smtp_times),
        ("imap2api POST (its answer)", lat.post_times),
        ("imap2api POST → sent and saved", lat.to_saved),
    ]
    for label, values in rows:
        p50_, p95_ = percentile(values, 50), percentile(values, 95)
        lines.append(f"  {label:34} {p50_:7.3f}s {p95_:7.3f}s {max(values):7.3f}s")
    ehlo = percentile(floor.ehlo_times, 50) * 1000
    return [
        *lines,
        f"  p50 {p50:.3f} s ≤ floor p50 + {TARGET_P50_PLUS:g} s = {floor50 + TARGET_P50_PLUS:.3f} s   "
        f"{verdict(p50 <= floor50 + TARGET_P50_PLUS)}",
        f"  p95 {p95:.3f} s ≤ floor p95 + {TARGET_P95_PLUS:g} s = {floor95 + TARGET_P95_PLUS:.3f} s   "
        f"{verdict(p95 <= floor95 + TARGET_P95_PLUS)}",
        f"  sequential rate: imap2api {n / lat.seconds:.1f} messages/s sent and saved (serve CPU "
        f"{cpu / n * 1000:.0f} ms a message),",
        f"    the floor {n / floor.seconds:.1f} messages/s",
        f"  the floor's two EHLOs: p50 {ehlo:.0f} ms of its SMTP time (the test server answers EHLO line",
        "    by line: Nagle and delayed ACK), for imap2api as for the floor",
        "",
    ]


def memory_lines(big_mb: float, mem: Memory, mem_copy: Memory | None) -> list[str]:
    """Phase 3's figures."""
    limit = TARGET_MEMORY_FACTOR * mem.size
    lines = [
        f"MEMORY: one {big_mb:g} MB attachment as multipart/form-data ({mb(mem.size)} MB composed);",
        "  serve's RSS every 10 ms"
        + (" and its exact peak (VmHWM reset before the POST); MB" if mem.exact else " (no VmHWM reset); MB"),
        f"  {'':31} baseline   peak  increment × size  after  POST s total s",
    ]
    measured = [("request + send (save_sent off)", mem)]
    if mem_copy is not None:
        measured.append(("+ filing in Sent (save_sent on)", mem_copy))
    for label, m in measured:
        lines.append(
            f"  {label:31} {mb(m.baseline):>8} {mb(m.peak):>6} {m.increment / MB:>+10.1f} "
            f"{m.increment / m.size:>6.2f} {mb(m.after):>6} {m.post_seconds:>7.2f} {m.seconds:>7.2f}"
        )
    return [
        *lines,
        f"    by the POST's answer (sampled): {(mem.at_answer - mem.baseline) / MB:+.1f} MB; "
        "the rest is the worker's send",
        f"  request + send: {mem.increment / MB:+.1f} MB ≤ {TARGET_MEMORY_FACTOR:g} × {mb(mem.size)} MB "
        f"= {limit / MB:.1f} MB   {verdict(mem.increment <= limit)}",
    ]


def run(args: argparse.Namespace, root: Path, lines: list[str]) -> None:
    """Setup, throughput, latency, memory; each phase's figures added to ``lines`` as it ends."""
    from tests.support.dovecot import DovecotServer
    from tests.support.smtp import SmtpServer

    n, k = args.messages, args.concurrency
    rng = random.Random(args.seed)
    payload = rng.randbytes(ATTACHMENT_BYTES)
    big = rng.randbytes(int(args.big_mb * MB))
    room = max(25_000_000, int(len(big) * 1.5) + MB)  # the composed message is base64: 4/3 of it and more
    with contextlib.ExitStack() as stack:
        say("setup: Dovecot, the SMTP server, imap2api serve")
        dovecot = stack.enter_context(DovecotServer(tls=False))
        user, floor_user = dovecot.add_user(), dovecot.add_user()
        smtp = stack.enter_context(SmtpServer(tls="starttls", users={SMTP_LOGIN: SMTP_PASSWORD}))
        receipts = Receipts(smtp)
        settings = {
            **settings_of(),
            "imap_ca_file": str(smtp.ca_cert_path),
            "send_rate_limit": "1000000/hour",
            "send_max_message_bytes": str(room),
            "sync_max_message_bytes": str(room),
        }
        if args.worker_threads:
            settings["embedded_worker_threads"] = str(args.worker_threads)
        serve = Serve(root, settings)
        stack.callback(serve.close)
        serve.cli("createuser", API_USER, "--password", API_PASSWORD)
        api = Api(serve.url)
        stack.callback(api.close)
        server_id = api.add_server(dovecot, user)
        first, _ = api.sync(server_id)
        configure_smtp(api, server_id, smtp)
        say(f"setup: first sync {first.get('status')}; SMTP on 127.0.0.1:{smtp.port} (STARTTLS, AUTH)")

        # A warm-up of each path (imports, TLS, the first job), not measured.
        floor_run(smtp, receipts, dovecot, floor_user, 2, 1, payload, "warmfloor")
        warm = post_json(api.http, server_id, f"sb-{secrets.token_hex(3)}-warm-0", payload)
        wait_settled(api.http, int(warm["id"]))
        serve.quiet()

        say(f"throughput: the floor, {n} messages on {k} threads")
        floor_k = floor_run(smtp, receipts, dovecot, floor_user, n, k, payload, "floork")
        say(f"throughput: the floor took {floor_k.seconds:.1f} s; imap2api, {n} messages on {k} threads")
        cpu = serve.cpu_seconds()
        tput = imap2api_throughput(api, server_id, n, k, payload)
        cpu = serve.cpu_seconds() - cpu
        say(f"throughput: imap2api took {tput.seconds:.1f} s")
        lines += throughput_lines(n, k, tput, floor_k, cpu)
        serve.quiet()

        say(f"latency: the floor, {n} messages one at a time")
        floor_1 = floor_run(smtp, receipts, dovecot, floor_user, n, 1, payload, "floorseq")
        say(f"latency: imap2api, {n} messages one at a time")
        cpu = serve.cpu_seconds()
        lat = imap2api_latency(api, receipts, server_id, n, payload)
        cpu = serve.cpu_seconds() - cpu
        lines += latency_lines(n, lat, floor_1, cpu)
        smtp.clear()  # what it stored is the bench's own memory, not needed any more

        say(f"memory: one {args.big_mb:g} MB attachment, multipart, save_sent off")
        configure_smtp(api, server_id, smtp, save_sent=False)
        mem = big_message(serve, api, receipts, server_id, big, copy=False)
        smtp.clear()
        say(f"memory: {mem.increment / MB:+.1f} MB; again with save_sent on")
        configure_smtp(api, server_id, smtp, save_sent=True)
        try:
            mem_copy = big_message(serve, api, receipts, server_id, big, copy=True)
        finally:
            smtp.clear()
        lines += memory_lines(args.big_mb, mem, mem_copy)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; 0 whatever they say."""
    parser = argparse.ArgumentParser(prog="python -m bench.sending", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="N messages per run (100)")
    parser.add_argument("--concurrency", type=int, default=4, help="K posting threads, and the floor's (4)")
    parser.add_argument("--big-mb", type=float, default=20.0, help="the big attachment, MB (20)")
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=0,
        help="the serve's EMBEDDED_WORKER_THREADS (default: imap2api's own, 2), which send the messages",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (serve.log, SQLite)")
    args = parser.parse_args(argv)

    from tests.support.dovecot import find_dovecot

    if find_dovecot() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 0
    print(f"bench.sending: {os.cpu_count()} CPUs, load average {_load()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="imap2api-bench-sending-"))
    lines: list[str] = []
    try:
        run(args, root, lines)
    except Exception as exc:  # noqa: BLE001 - reported with what was measured
        import traceback

        traceback.print_exc()
        lines.append(f"failed: {type(exc).__name__}: {exc} (log: {root}/serve.log)")
    finally:
        lines.append(f"load average at the end {_load()}")
        print("\n".join(lines), flush=True)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _load() -> str:
    """The 1, 5 and 15 minutes load averages."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
