"""API read benchmark: latency of the GraphQL and REST read paths over a large synthetic mirror.

Run ``python -m bench.api [--sizes 10000,200000] [--database sqlite|postgresql|both] [--requests 200]``.
For each database (SQLite in a temp dir; PostgreSQL in a throw-away database that is dropped at the
end) and each size N:

1. migrate a fresh database, create a user, a token, an IMAP server and its folders (INBOX, Sent,
   Archive), and bulk-insert N deterministic, realistic emails with SQLAlchemy Core (threads of
   1-8 messages over 3 years, non-ASCII subjects, text bodies of 300-1500 chars, some HTML bodies,
   varied flags, ~10% with attachments). A rare word ("lighthouse", in exactly 20 emails whatever N)
   gives a selective search; a frequent vocabulary word gives a common one. The search index is
   populated as in production (on SQLite, the insert queues each email and the indexer moves the
   queue into FTS5, as the worker does after a sync; on PostgreSQL the emails are stored as indexed
   and the partial pg_trgm GIN indexes built after the load), then the
   planner statistics are refreshed (ANALYZE of the tables imap2api analyzes; VACUUM ANALYZE);
2. serve the real app (``uvicorn imap2api.app:create_app --factory``) in a subprocess on a free
   loopback port, with rate limits off;
3. with one keep-alive ``httpx.Client``, warm up, then time ``--requests`` sequential requests per
   case (GraphQL pages, searches, deep page, threads, statistics, detail; REST page and search) and
   print p50/p95/p99 in milliseconds;
4. print a summary and the targets with PASS/MISS. The exit status is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any
from urllib.parse import urlparse

from bench.sync import prepare_environment

# Targets (see bench/README.md).
TARGET_SEARCH_P50_MS = 25.0  # selective search p50 at the largest size, at most
TARGET_FLAT_RATIO = 1.5  # selective search p50 largest size ÷ smallest size, at most ("flat")
TARGET_REST_RATIO = 1.3  # REST p50 ÷ GraphQL p50 for the same page / search, at most
SLOW_P50_MS = 50.0  # any case above this p50 is listed as slow
# Lists at the largest size, p50 at most (issue #18): the common search includes its exact count.
LIST_TARGETS_MS = {"gql threads": 25.0, "gql statistics": 25.0, "gql search common": 100.0}
MIN_SAMPLES = 15  # timed requests per case even past its time budget

POSTGRES_ADMIN_URL = os.environ.get(
    "IMAP2API_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CHUNK = 5000
RARE_WORD = "lighthouse"
RARE_COUNT = 20
COMMON_WORD = "meeting"
OPERATOR_QUERY = "from:weber subject:budget"
DEEP_PAGE = 100
PAGE_SIZE = 50
OWNER_NAME, OWNER_ADDRESS = "Alex Morgan", "alex.morgan@example.org"
FOLDERS = (("INBOX", ""), ("Sent", "\\Sent"), ("Archive", "\\Archive"))
START = datetime(2022, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 24 * 3600

# ------------------------------------------------------------------------------------------------
# The corpus
# ------------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    """The whitespace-separated words of ``text``."""
    return text.split()


# Ordered roughly by frequency: word choice is Zipf-like over this order.
WORDS = _split("""
the and to of a in for is on that we it with this be as at by from are will you have not or
please can if our meeting project report team update thanks week next today new time review
budget customer release schedule draft proposal contract invoice payment server database
deployment migration backup network storage cluster service issue ticket feature design
prototype roadmap milestone deadline estimate forecast revenue margin sales marketing campaign
launch partner vendor supplier shipment order delivery warehouse inventory audit compliance
policy security incident outage latency throughput capacity performance metrics dashboard
analytics summary agenda minutes action items follow feedback approval onboarding training
workshop conference travel hotel flight expense receipt reimbursement office facilities
hardware laptop license subscription renewal pricing discount quote scope requirement
specification interface integration testing staging production rollback hotfix patch version
changelog documentation handbook guideline template checklist regards cheers attached below
above quickly soon tomorrow yesterday monday tuesday wednesday thursday friday month morning
afternoon evening call discuss confirm clarify agree propose suggest consider prepare finalize
circulate share question answer problem solution plan status progress result numbers figures
slides document spreadsheet link access account password reset login error warning alert
notification reminder invitation calendar room building floor parking lunch dinner coffee
""")
ACCENTED = _split(
    "München Grüße Zürich Köln Straße Übersicht Größe Ärger café naïve résumé Málaga São Øresund"
)
SUBJECT_WORDS = _split("""
budget review meeting project update report quarterly planning release notes invoice contract
proposal draft schedule deployment migration incident outage roadmap workshop conference travel
training onboarding offsite hiring feedback approval summary agenda minutes launch campaign
pricing renewal license audit compliance security backup storage network performance metrics
""")
FIRST_NAMES = _split("""Anna Ben Carla David Emma Felix Greta Hannah Ivan Julia Karl Lena Marco Nina Oskar
Paula Quentin Rosa Stefan Tara Uwe Vera Wim Xenia Yusuf Zoe Jürgen Björn Renée Chloé""")
LAST_NAMES = _split("""Schmidt Weber Fischer Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf
Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Smith Jones Brown Taylor Wilson
Martin Dubois Rossi Garcia Novak Müller Jensen Nielsen Kowalski Silva""")
DOMAINS = _split("example.com example.net acme.example globex.example initech.example mail.example")


def _ascii(text: str) -> str:
    """A plain-ASCII local part for an address."""
    table = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "é": "e", "ø": "o", "ß": "ss"})
    return text.lower().translate(table)


@dataclass
class Meta:
    """The header part of one synthetic email (bodies are generated at insert time)."""

    message_id: str
    in_reply_to: str
    references: str
    subject: str
    sender: str
    sender_name: str
    recipient: str
    recipient_names: str
    cc: str
    date: datetime
    folder: str
    thread_id: str
    seen: bool
    flagged: bool
    answered: bool
    has_attachments: bool
    rare: bool = False


class Corpus:
    """Deterministic synthetic mail (``random.Random(seed)``)."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        weights = [1.0 / (rank + 8) for rank in range(len(WORDS))]
        self.cum_weights = [sum(weights[: i + 1]) for i in range(len(weights))]
        self.contacts = [
            (f"{first} {last}", f"{_ascii(first)}.{_ascii(last)}@{self.rng.choice(DOMAINS)}")
            for first in FIRST_NAMES
            for last in LAST_NAMES
        ]
        self.rng.shuffle(self.contacts)
        self.contacts = self.contacts[:600]

    def words(self, count: int) -> list[str]:
        """``count`` Zipf-distributed words, with an occasional accented one."""
        chosen = self.rng.choices(WORDS, cum_weights=self.cum_weights, k=count)
        if self.rng.random() < 0.2:
            chosen[self.rng.randrange(count)] = self.rng.choice(ACCENTED)
        return chosen

    def subject(self) -> str:
        """A short subject, now and then with a non-ASCII word."""
        words = self.rng.sample(SUBJECT_WORDS, self.rng.randint(2, 5))
        if self.rng.random() < 0.15:
            words.insert(self.rng.randrange(len(words) + 1), self.rng.choice(ACCENTED))
        text = " ".join(words)
        return text[0].upper() + text[1:]

    def body(self, rare: bool) -> tuple[str, str]:
        """Text body of 300-1500 characters in paragraphs, and an HTML body for about a third."""
        target = self.rng.randint(300, 1500)
        words = self.words(target // 5 + 10)
        if rare:
            words.insert(self.rng.randrange(len(words)), RARE_WORD)
        paragraphs, current, length = [], [], 0
        for word in words:
            current.append(word)
            length += len(word) + 1
            if len(current) > 12 and self.rng.random() < 0.08:
                paragraphs.append(" ".join(current).capitalize() + ".")
                current = []
            if length >= target:
                break
        if current:
            paragraphs.append(" ".join(current).capitalize() + ".")
        if rare and RARE_WORD not in " ".join(paragraphs):
            paragraphs.append(f"See you at the {RARE_WORD}.")
        text = "Hello,\n\n" + "\n\n".join(paragraphs) + "\n\nBest regards\n"
        markup = ""
        if self.rng.random() < 0.33:
            markup = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
            markup = f"<html><body>{markup}</body></html>"
        return text, markup

    def plan(self, n: int) -> list[Meta]:
        """N emails in threads of 1-8 messages over 3 years, sorted as a sync would insert them."""
        rng = self.rng
        metas: list[Meta] = []
        thread_number = 0
        while len(metas) < n:
            size = min(n - len(metas), rng.choices(range(1, 9), weights=[40, 20, 12, 9, 7, 5, 4, 3])[0])
            thread_number += 1
            thread_id = "thr_%08x" % ((thread_number * 2654435761) & 0xFFFFFFFF)
            base = self.subject()
            others = rng.sample(self.contacts, rng.choice((1, 1, 1, 2, 3)))
            when = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
            chain: list[str] = []
            mine = rng.random() < 0.2  # who writes first
            for position in range(size):
                index = len(metas)
                message_id = f"<{index:x}.{rng.getrandbits(40):010x}@bench.example>"
                if mine:
                    sender_name, sender = OWNER_NAME, OWNER_ADDRESS
                    recipients = others
                    folder = "Sent"
                else:
                    sender_name, sender = rng.choice(others)
                    recipients = [(OWNER_NAME, OWNER_ADDRESS)] + [c for c in others if c[1] != sender][:1]
                    folder = "Archive" if rng.random() < 0.2 else "INBOX"
                cc = rng.sample(self.contacts, 1)[0][1] if rng.random() < 0.15 else ""
                metas.append(
                    Meta(
                        message_id=message_id,
                        in_reply_to=chain[-1] if chain else "",
                        references=" ".join(chain[-10:]),
                        subject=("Re: " if position else "") + base,
                        sender=sender,
                        sender_name=sender_name,
                        recipient=", ".join(address for _, address in recipients),
                        recipient_names=", ".join(name for name, _ in recipients),
                        cc=cc,
                        date=when,
                        folder=folder,
                        thread_id=thread_id,
                        seen=folder != "INBOX" or rng.random() < 0.75,
                        flagged=rng.random() < 0.04,
                        answered=rng.random() < 0.1,
                        has_attachments=rng.random() < 0.10,
                    )
                )
                chain.append(message_id)
                when += timedelta(seconds=rng.randint(300, 2 * 86400))
                mine = rng.random() < 0.4
        for index in rng.sample(range(n), min(RARE_COUNT, n)):
            metas[index].rare = True
        # A sync inserts folder by folder in UID order, which follows arrival (date) order.
        order = {name: i for i, (name, _) in enumerate(FOLDERS)}
        metas.sort(key=lambda meta: (order[meta.folder], meta.date))
        return metas


# ------------------------------------------------------------------------------------------------
# Filling a database
# ------------------------------------------------------------------------------------------------


@dataclass
class Fixture:
    """What a filled database offers to the client."""

    token: str
    detail_id: int
    insert_seconds: float
    index_seconds: float
    size_bytes: int


def fill(url: str, n: int, seed: int) -> Fixture:
    """Migrate ``url`` and fill it with a user, a server, folders and N emails."""
    from sqlalchemy import insert, text

    from imap2api.config import reload_settings
    from imap2api.crud import users as crud_users
    from imap2api.db import dispose_engines, get_engine, migrate, session_scope
    from imap2api.models import Email, Folder, ImapServer
    from imap2api.security import encrypt_secret

    dispose_engines()
    reload_settings(database_url=url)
    migrate()
    engine = get_engine()
    dialect = engine.dialect.name
    corpus = Corpus(seed)
    metas = corpus.plan(n)
    counts = {name: sum(1 for meta in metas if meta.folder == name) for name, _ in FOLDERS}
    with session_scope() as session:
        user = crud_users.create_user(session, username="bench", password="bench-password")
        token = crud_users.create_token(session, user_id=user.id, name="bench")
        server = ImapServer(
            owner_id=user.id,
            name="bench",
            host="imap.example.org",
            port=993,
            username="alex",
            password_encrypted=encrypt_secret("not-used"),
            last_sync_status="success",
        )
        session.add(server)
        session.flush()
        folder_ids, uidvalidity = {}, {}
        for i, (name, special_use) in enumerate(FOLDERS):
            uidvalidity[name] = 1_700_000_000 + i
            folder = Folder(
                imap_server_id=server.id,
                name=name,
                special_use=special_use,
                uidvalidity=uidvalidity[name],
                uidnext=counts[name] + 1,
                message_count=counts[name],
            )
            session.add(folder)
            session.flush()
            folder_ids[name] = folder.id
        owner_id, server_id = user.id, server.id

    trgm_indexes: list[str] = []
    if dialect == "postgresql":
        # Building the GIN indexes once after the load is much faster than maintaining them per row;
        # they are recreated from their own definitions, so the result is what the migration made.
        with engine.begin() as connection:
            trgm_indexes = list(
                connection.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes "
                        "WHERE tablename = 'emails' AND indexname LIKE 'ix_emails_trgm_%'"
                    )
                ).scalars()
            )
            for definition in trgm_indexes:
                name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
                connection.execute(text(f"DROP INDEX {name}"))
            # The load stands for mail the indexer has taken in (migration 0017): inserted indexed.
            connection.execute(text("ALTER TABLE emails ALTER COLUMN search_indexed SET DEFAULT true"))

    started = time.perf_counter()
    next_uid = {name: 1 for name, _ in FOLDERS}
    now = datetime.now(UTC)
    for start in range(0, n, CHUNK):
        rows = []
        for meta in metas[start : start + CHUNK]:
            body_text, body_html = corpus.body(meta.rare)
            flags = " ".join(
                flag
                for flag, on in (
                    ("\\Seen", meta.seen),
                    ("\\Flagged", meta.flagged),
                    ("\\Answered", meta.answered),
                )
                if on
            )
            uid = next_uid[meta.folder]
            next_uid[meta.folder] += 1
            rows.append(
                {
                    "owner_id": owner_id,
                    "imap_server_id": server_id,
                    "folder_id": folder_ids[meta.folder],
                    "folder": meta.folder,
                    "uidvalidity": uidvalidity[meta.folder],
                    "uid": uid,
                    "modseq": None,
                    "message_id": meta.message_id,
                    "in_reply_to": meta.in_reply_to,
                    "references": meta.references,
                    "subject": meta.subject,
                    "sender": meta.sender,
                    "sender_name": meta.sender_name,
                    "recipient": meta.recipient,
                    "recipient_names": meta.recipient_names,
                    "cc": meta.cc,
                    "date": meta.date,
                    "internal_date": meta.date + timedelta(seconds=corpus.rng.randint(1, 90)),
                    "flags": flags,
                    "seen": meta.seen,
                    "flagged": meta.flagged,
                    "answered": meta.answered,
                    "size": len(body_text.encode())
                    + len(body_html.encode())
                    + 900
                    + (corpus.rng.randint(20_000, 200_000) if meta.has_attachments else 0),
                    "body_text": body_text,
                    "body_html": body_html,
                    "thread_id": meta.thread_id,
                    "has_attachments": meta.has_attachments,
                    "announced": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(Email), rows)
        _progress(f"  inserted {min(start + CHUNK, n)}/{n}")
    insert_seconds = time.perf_counter() - started

    started = time.perf_counter()
    if dialect == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE emails ALTER COLUMN search_indexed SET DEFAULT false"))
            for definition in trgm_indexes:
                connection.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
            size_bytes = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    else:
        # As the worker does after a sync: move the queued emails into the search index.
        from sqlmodel import Session

        from imap2api.crud.maintenance import ANALYZED
        from imap2api.crud.search_index import index_pending

        with Session(engine) as session:
            while index_pending(session, limit=5_000):
                session.commit()
                _progress("  search index: a chunk of 5000 in")
        with engine.begin() as connection:
            for table in ANALYZED:  # as imap2api.crud.maintenance does: never the FTS shadow tables
                connection.execute(text(f"ANALYZE {table}"))
        with engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        size_bytes = os.path.getsize(urlparse(url).path)
    index_seconds = time.perf_counter() - started

    # The detail case: the first message of a mid-sized thread in the middle of the mailbox.
    sizes: dict[str, int] = {}
    for meta in metas:
        sizes[meta.thread_id] = sizes.get(meta.thread_id, 0) + 1
    candidates = [
        meta for meta in metas[n // 2 :] + metas if sizes[meta.thread_id] >= 4 and not meta.in_reply_to
    ]
    target = candidates[0] if candidates else metas[n // 2]
    with engine.connect() as connection:
        detail_id = connection.execute(
            text("SELECT id FROM emails WHERE message_id = :mid"), {"mid": target.message_id}
        ).scalar_one()
    dispose_engines()
    return Fixture(
        token=token,
        detail_id=detail_id,
        insert_seconds=insert_seconds,
        index_seconds=index_seconds,
        size_bytes=size_bytes,
    )


# ------------------------------------------------------------------------------------------------
# The server and the client
# ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``uvicorn imap2api.app:create_app --factory`` in a subprocess."""

    def __init__(self, url: str, data_dir: str) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "IMAP2API_DATABASE_URL": url, "IMAP2API_DATA_DIR": data_dir}
        self.log_path = os.path.join(data_dir, f"uvicorn-{self.port}.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "imap2api.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=data_dir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        with open(self.log_path, errors="replace") as handle:
            raise RuntimeError(f"the server did not start; its log:\n{handle.read()[-4000:]}")

    def stop(self) -> None:
        """Terminate the server (this process's own child, by its pid)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


LIST_SELECTION = "count results { id subject sender date folder threadId threadCount }"
EMAILS_QUERY = (
    f"query($q: String, $page: Int!) {{ emails(q: $q, page: $page, pageSize: {PAGE_SIZE}) "
    f"{{ {LIST_SELECTION} }} }}"
)
THREADS_QUERY = f"{{ threads(pageSize: {PAGE_SIZE}) {{ count results {{ id threadCount }} }} }}"
STATISTICS_QUERY = "{ statistics { totalEmails totalThreads folders { name count } } }"
DETAIL_QUERY = (
    "query($id: ID!) { email(id: $id) { id subject sender recipient date folder threadId "
    "bodyText bodyHtml threadEmails { id subject sender date bodyText bodyHtml } } }"
)


@dataclass
class Case:
    """One kind of request."""

    name: str
    method: str
    path: str
    payload: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


def cases(detail_id: int, n: int) -> list[Case]:
    """Every timed request, GraphQL first, then the REST equivalents."""
    deep = max(1, min(DEEP_PAGE, math.ceil(n / PAGE_SIZE)))  # small mailboxes have fewer pages

    def gql(name: str, query: str, **variables: Any) -> Case:
        return Case(name, "POST", "/graphql", payload={"query": query, "variables": variables})

    return [
        gql("gql me (floor)", "{ me { id } }"),
        gql("gql page", EMAILS_QUERY, q=None, page=1),
        gql("gql search rare", EMAILS_QUERY, q=RARE_WORD, page=1),
        gql("gql search common", EMAILS_QUERY, q=COMMON_WORD, page=1),
        gql("gql search operators", EMAILS_QUERY, q=OPERATOR_QUERY, page=1),
        gql("gql deep page", EMAILS_QUERY, q=None, page=deep),
        gql("gql threads", THREADS_QUERY),
        gql("gql statistics", STATISTICS_QUERY),
        gql("gql detail", DETAIL_QUERY, id=str(detail_id)),
        Case("rest page", "GET", "/api/emails/", params={"page_size": PAGE_SIZE}),
        Case("rest search rare", "GET", "/api/emails/", params={"q": RARE_WORD}),
    ]


def _hits(body: dict[str, Any]) -> str:
    """How many rows a response reports (count of a list), for context."""
    data = body.get("data", body)
    for value in data.values() if isinstance(data, dict) else []:
        if isinstance(value, dict) and "count" in value:
            return str(value["count"])
        if isinstance(value, dict) and "totalEmails" in value:
            return str(value["totalEmails"])
        if isinstance(value, dict) and "threadEmails" in value:
            return f"{1 + len(value['threadEmails'])} in thread"
    if isinstance(body, dict) and "count" in body:
        return str(body["count"])
    return ""


def _send(client, case: Case):  # noqa: ANN001, ANN202
    if case.method == "POST":
        return client.post(case.path, json=case.payload)
    return client.get(case.path, params=case.params)


def _check(case: Case, response) -> dict[str, Any]:  # noqa: ANN001
    """The JSON of a successful answer, or an error naming the case."""
    if response.status_code != 200:
        raise RuntimeError(f"{case.name}: HTTP {response.status_code}: {response.text[:500]}")
    body = response.json()
    if isinstance(body, dict) and body.get("errors"):
        raise RuntimeError(f"{case.name}: GraphQL errors: {body['errors']}")
    return body


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Timing:
    """Latencies of one case, in milliseconds."""

    samples: list[float]
    hits: str

    @property
    def p50(self) -> float:
        return percentile(sorted(self.samples), 50)

    @property
    def p95(self) -> float:
        return percentile(sorted(self.samples), 95)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.samples), 99)


def measure(
    base_url: str, token: str, all_cases: list[Case], *, requests: int, warmup: int, budget: float
) -> dict[str, Timing]:
    """Warm up, then time up to ``requests`` sequential requests per case.

    Cases are interleaved (one request of each in turn) so that a change in the machine's load
    affects every case alike, which keeps ratios such as REST/GraphQL meaningful on a busy machine.
    A case stops early once its requests took ``budget`` seconds in all (after ``MIN_SAMPLES``).
    """
    import httpx

    headers = {"Authorization": f"Token {token}"}
    samples: dict[str, list[float]] = {case.name: [] for case in all_cases}
    spent: dict[str, float] = {case.name: 0.0 for case in all_cases}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120.0) as client:
        hits = {}
        for case in all_cases:  # first pass: check every case answers correctly
            hits[case.name] = _hits(_check(case, _send(client, case)))
        for case in all_cases:  # warm-up, at most a tenth of the budget per case
            began = time.perf_counter()
            for _ in range(warmup):
                _check(case, _send(client, case))
                if time.perf_counter() - began > budget / 10:
                    break
        active = list(all_cases)
        while active:
            for case in list(active):
                started = time.perf_counter()
                response = _send(client, case)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    _check(case, response)
                samples[case.name].append(elapsed * 1000)
                spent[case.name] += elapsed
                count = len(samples[case.name])
                if count >= requests or (spent[case.name] > budget and count >= MIN_SAMPLES):
                    active.remove(case)
                    _progress(
                        f"    {case.name:<24} p50 {percentile(sorted(samples[case.name]), 50):8.1f} ms "
                        f"({count} requests)"
                    )
    return {case.name: Timing(samples[case.name], hits[case.name]) for case in all_cases}


# ------------------------------------------------------------------------------------------------
# Running and reporting
# ------------------------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


@dataclass
class Run:
    """The measurements of one database at one size."""

    database: str
    size: int
    fixture: Fixture
    timings: dict[str, Timing] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)


def _admin():  # noqa: ANN202
    import psycopg

    return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)


def _create_postgres(name: str) -> str:
    with _admin() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlparse(POSTGRES_ADMIN_URL)._replace(path=f"/{name}").geturl()


def _drop_postgres(name: str) -> None:
    with _admin() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_one(database: str, n: int, args: argparse.Namespace, base_dir: str) -> Run:
    """Fill a fresh database of ``database`` with N emails, serve it, measure it, throw it away."""
    data_dir = tempfile.mkdtemp(prefix=f"{database}-{n}-", dir=base_dir)
    pg_name = None
    if database == "postgresql":
        pg_name = f"imap2api_bench_{os.getpid()}_{secrets.token_hex(3)}"
        url = _create_postgres(pg_name)
    else:
        url = f"sqlite:///{os.path.join(data_dir, 'imap2api.sqlite3')}"
    try:
        _progress(f"{database} N={n}: filling {url}")
        fixture = fill(url, n, args.seed)
        _progress(
            f"  insert {fixture.insert_seconds:.1f} s, index/analyze {fixture.index_seconds:.1f} s, "
            f"{fixture.size_bytes / 1e6:.0f} MB"
        )
        server = Server(url, data_dir)
        try:
            server.wait()
            load_before = os.getloadavg()[0]
            timings = measure(
                server.base_url,
                fixture.token,
                cases(fixture.detail_id, n),
                requests=args.requests,
                warmup=args.warmup,
                budget=args.budget,
            )
            load_after = os.getloadavg()[0]
        finally:
            server.stop()
        run = Run(database, n, fixture, timings, (load_before, load_after))
        report_run(run)
        return run
    finally:
        if args.keep:
            _progress(f"  kept: {url}")
        else:
            if pg_name:
                _drop_postgres(pg_name)
            shutil.rmtree(data_dir, ignore_errors=True)


def report_run(run: Run) -> None:
    """The table of one database and size."""
    f = run.fixture
    print(
        f"\n=== {run.database}, N={run.size} emails "
        f"(load {f.insert_seconds:.1f} s = {run.size / max(f.insert_seconds, 1e-9):.0f} rows/s, "
        f"index/analyze {f.index_seconds:.1f} s, database {f.size_bytes / 1e6:.0f} MB; "
        f"load average {run.load[0]:.2f}/{run.load[1]:.2f}) ==="
    )
    print(f"{'case':<24} {'hits':>12} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    for name, timing in run.timings.items():
        flag = "  SLOW" if timing.p50 > SLOW_P50_MS else ""
        print(
            f"{name:<24} {timing.hits:>12} {len(timing.samples):>5} {timing.p50:9.1f} {timing.p95:9.1f} "
            f"{timing.p99:9.1f}{flag}"
        )
    for rest, gql in (("rest page", "gql page"), ("rest search rare", "gql search rare")):
        ratio = run.timings[rest].p50 / run.timings[gql].p50
        print(
            f"{rest} / {gql} p50: {ratio:.2f} (target <= {TARGET_REST_RATIO}) "
            f"{_verdict(ratio <= TARGET_REST_RATIO)}"
        )
    sys.stdout.flush()


def report_summary(runs: list[Run]) -> None:
    """All runs side by side, and the targets."""
    if not runs:
        return
    columns = [f"{run.database[:6]} {_size_label(run.size)}" for run in runs]
    names = list(runs[0].timings)
    print("\n=== summary: p50 / p95 in ms ===")
    print(f"{'case':<24} " + " ".join(f"{column:>17}" for column in columns))
    for name in names:
        cells = [f"{run.timings[name].p50:7.1f} / {run.timings[name].p95:7.1f}" for run in runs]
        print(f"{name:<24} " + " ".join(f"{cell:>17}" for cell in cells))

    print("\n=== targets ===")
    for database in dict.fromkeys(run.database for run in runs):
        mine = sorted((run for run in runs if run.database == database), key=lambda run: run.size)
        small, large = mine[0], mine[-1]
        p50 = large.timings["gql search rare"].p50
        print(
            f"{database}: search p50 at N={large.size}: {p50:.1f} ms "
            f"(target <= {TARGET_SEARCH_P50_MS:.0f} ms) {_verdict(p50 <= TARGET_SEARCH_P50_MS)}; "
            f"of which the floor (auth + GraphQL, "
            f"`me`) is {large.timings['gql me (floor)'].p50:.1f} ms"
        )
        if large.size > small.size:
            ratio = p50 / small.timings["gql search rare"].p50
            print(
                f"{database}: search p50 N={large.size} / N={small.size}: {ratio:.2f} "
                f"(flat: target <= {TARGET_FLAT_RATIO}) {_verdict(ratio <= TARGET_FLAT_RATIO)}"
            )
            both = p50 <= TARGET_SEARCH_P50_MS and ratio <= TARGET_FLAT_RATIO
            print(
                f'{database}: "search p50 <= {TARGET_SEARCH_P50_MS:.0f} ms at {_size_label(large.size)}, '
                f'flat as data grows": {_verdict(both)}'
            )
        for name, goal in LIST_TARGETS_MS.items():
            value = large.timings[name].p50
            print(
                f"{database}: {name} p50 at N={large.size}: {value:.1f} ms "
                f"(target <= {goal:.0f} ms) {_verdict(value <= goal)}"
            )
        for run in mine:
            for rest, gql in (("rest page", "gql page"), ("rest search rare", "gql search rare")):
                ratio = run.timings[rest].p50 / run.timings[gql].p50
                print(
                    f"{database} N={run.size}: {rest} / {gql} p50 {ratio:.2f} "
                    f"(target <= {TARGET_REST_RATIO}) {_verdict(ratio <= TARGET_REST_RATIO)}"
                )
    slow = [
        (run, name, timing)
        for run in runs
        for name, timing in run.timings.items()
        if timing.p50 > SLOW_P50_MS
    ]
    if slow:
        print(f"\nslow (p50 > {SLOW_P50_MS:.0f} ms):")
        for run, name, timing in slow:
            print(f"  {run.database} N={run.size}: {name}: p50 {timing.p50:.1f} ms ({timing.hits} hits)")
    else:
        print(f"\nno case has a p50 above {SLOW_P50_MS:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="10000,200000", help="comma-separated mailbox sizes (default 10000,200000)"
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per case (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per case first (default 10)")
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds per case after which timing stops early (at least 15 requests; default 30)",
    )
    parser.add_argument("--seed", type=int, default=20241127)
    parser.add_argument("--keep", action="store_true", help="keep the databases (and print where they are)")
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]

    base_dir = tempfile.mkdtemp(prefix="imap2api-bench-api-")
    prepare_environment(base_dir, rate_limit_enabled="false", log_level="WARNING")
    print(
        f"bench.api: sizes {sizes}, databases {databases}, {args.requests} requests per case "
        f"({args.warmup} warm-up), seed {args.seed}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    runs: list[Run] = []
    try:
        for database in databases:
            for n in sizes:
                runs.append(run_one(database, n, args, base_dir))
    finally:
        report_summary(runs)
        if not args.keep:
            shutil.rmtree(base_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
