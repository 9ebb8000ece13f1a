"""Sync benchmark: imap2api's full and incremental sync against the raw limit of the same mailbox.

Run ``python -m bench.sync [--messages N] [--database sqlite|postgresql]``. Everything happens in
one process against a throw-away Dovecot (tests/support/dovecot.py) and a throw-away database:

1. fill a mailbox with N deterministic, realistic messages (``--mailbox standard``: ~31 KB, INBOX and
   a few hundred in Sent/Archive; ``small``: ~14.5 KB, all in INBOX);
2. RAW LIMIT: one imapclient connection (STARTTLS, like imap2api) fetching every message in
   batches of ``settings.sync_batch_messages`` and parsing it with the stdlib (compat32) parser,
   no database: the fastest a Python mirror of this mailbox could be;
3. FULL SYNC: ``run_sync`` of a fresh server row (foreground, no Dramatiq), while a thread polls the
   API's emails list for the newest 50 messages (TIME TO FIRST 50);
4. NO-CHANGE RE-SYNC right after, while the search index catch-up the worker runs after a sync
   (``index_all_pending``) works in another thread, and once more after it; then a RE-SYNC after 10
   new messages and 10 flag changes;
5. PEAK MEMORY (tracemalloc) of a full sync of N and of N/4 messages (fresh servers);
6. a summary with PASS/MISS per target. The exit status is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import math
import os
import random
import secrets
import shutil
import ssl
import sys
import tempfile
import textwrap
import time
import tracemalloc
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email import policy as email_policy
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

# Targets (see bench/README.md).
TARGET_RATE_RATIO = 0.70  # full sync msgs/s ÷ raw limit msgs/s, at least
TARGET_RESYNC_RATIO = 0.02  # no-change re-sync time ÷ full sync time, at most
TARGET_MEMORY_RATIO = (0.80, 1.25)  # peak(N) ÷ peak(N/4): "about the same"
TARGET_FIRST_PAGE_SECONDS = 1.0  # from the full sync's start until the newest 50 are readable, at most
FIRST_PAGE = 50  # the API's default page size

MB = 1_000_000
PASSWORD = "secret"
SKIP_SPECIAL_USE = (b"\\Trash", b"\\Junk")  # imap2api's default exclude_trash=True skips these

# ------------------------------------------------------------------------------------------------
# The corpus: deterministic, realistic messages
# ------------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    """The whitespace-separated words of ``text``."""
    return text.split()


_WORDS = _split("""
the of and to in is that for it as with was on be by at this have from or an are not we you
they will can all would there their which when one about more if out up so what some time
could into them other than then now only its also after use two how our work first well way
even new want because any these give day most us project report meeting budget quarter team
customer release schedule review draft proposal contract invoice payment server database
deployment migration backup network storage cluster service update issue ticket feature
design prototype roadmap milestone deadline estimate forecast revenue margin sales marketing
campaign launch partner vendor supplier shipment order delivery warehouse inventory audit
compliance policy security incident outage latency throughput capacity performance metrics
dashboard analytics summary agenda minutes action items follow feedback approval sign off
onboarding training workshop conference travel hotel flight expense receipt reimbursement
office facilities hardware laptop license subscription renewal pricing discount quote
estimate scope requirement specification interface integration testing staging production
rollback hotfix patch version changelog documentation handbook guideline template checklist
please let know thanks regards cheers attached below above quickly soon tomorrow yesterday
monday tuesday wednesday thursday friday next week month morning afternoon evening call
discuss confirm clarify agree propose suggest consider prepare finalize circulate share
""")
_LATIN1_WORDS = _split("""café naïve Grüße façade Zürich déjà señor Müller über Straße größer résumé
smörgåsbord crème brûlée Ångström fiancé jalapeño piñata Köln Málaga São Bogotá élan
coördinate Øresund Ærø""")
_UTF8_ONLY = ["€", "—", "“quoted”", "…", "✓", "東京", "Привет", "Łódź", "Dvořák", "→"]
_FIRST = _split("""Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert
Sybil Trent Victor Walter Yvonne Aisha Bruno Chen Dmitri Elena Farid Giulia Hiroshi Ingrid Jamal
Kofi Lena Mateo Nadia Oskar Priya Quentin Rosa Sanjay Tomasz Uma Viktor Wen Ximena Yusuf Zara""")
_FIRST_LATIN1 = ["José", "Zoë", "Renée", "Jürgen", "Björn", "Søren", "François", "Mónica", "Inês", "Andrés"]
_FIRST_UTF8 = ["Łukasz", "Jiří", "Małgorzata", "Šárka", "Dragoș"]
_LAST = _split("""Smith Johnson Williams Brown Jones Miller Davis Garcia Rodriguez Wilson Martinez Anderson
Taylor Thomas Moore Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young
Allen King Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Perez Roberts Turner""")
_LAST_LATIN1 = ["Müller", "Gómez", "Østergaard", "Lefèvre", "Ibáñez", "Schäfer", "Núñez"]
_LAST_UTF8 = ["Wałęsa", "Dvořák", "Nowak-Żuk", "Kovačević"]
_DOMAINS = _split("""example.com example.org example.net acme-corp.example globex.example initech.example
umbrella.example hooli.example vandelay.example stark.example wayne.example contoso.example""")
_TOPICS = """Quarterly report|Budget review|Release plan|Meeting notes|Invoice|Contract renewal|
Server migration|Security incident|Travel plans|Onboarding checklist|Roadmap update|Team offsite|
Customer feedback|Performance metrics|Outage postmortem|Hiring update|Design review|Vendor quote|
Weekly status|Expense report|Training session|Office move|License renewal|Database backup""".replace(
    "\n", ""
).split("|")
_OBJECTS = """for Q1|for Q2|for Q3|for Q4|- action items|(draft)|v2|for project Atlas|for project Borealis|
for the Berlin office|next steps|- please review|for approval|#{n}|before Friday|follow-up|summary|
and timeline|- updated numbers|for the board""".replace("\n", "").split("|")
_SUBJECTS_LATIN1 = [
    "Grüße aus Zürich",
    "Café am Freitag?",
    "Résumé für die Stelle",
    "Reunión de equipo mañana",
    "Präsentation für Köln",
    "Àpropos du contrat",
    "Größere Änderungen am Angebot",
]
_SUBJECTS_UTF8 = [
    "Budget 2024 — € figures",
    "Привет из московского офиса",
    "会議の議事録",
    "Łódź office ✓",
    "Trip to São Paulo → agenda",
    "Dvořák concert tickets 🎻",
]
_MAILERS = [
    "Mozilla Thunderbird 115.4",
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774)",
    "Roundcube 1.6",
    "K-9 Mail for Android",
    "Evolution 3.48",
]


def _ascii_of(text: str) -> str:
    """An address-friendly ASCII form of a name part ("Zoë" → "zoe")."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == "-") or "x"


@dataclass
class _Sent:
    """What a later reply needs to know about a message."""

    message_id: str
    references: list[str]
    root_subject: str
    sender: tuple[str, str]
    date: datetime
    quote: str


@dataclass(frozen=True)
class Shape:
    """What a mailbox's messages look like: body sizes, HTML, replies, attachments, folders."""

    body_bytes: tuple[int, int]  # text (+ HTML) size, log-uniform between these
    html: float  # share with a text/html alternative
    replies: tuple[float, float]  # share of replies among incoming mail, among sent mail
    attachment_bytes: tuple[int, int]  # an attachment's size, log-uniform between these
    folders: dict[str, float]  # share of the messages per folder (INBOX takes the rest)


MAILBOXES = {
    # ~31 KB on average: 95% INBOX, 3% Sent, 2% Archive; a third with HTML; 20-200 KB attachments.
    "standard": Shape((5_000, 50_000), 1 / 3, (0.4, 0.7), (20_000, 200_000), {"Sent": 0.03, "Archive": 0.02}),
    # ~14.5 KB on average, all in INBOX: text + HTML, 30% replies, 20-60 KB attachments.
    "small": Shape((3_700, 14_800), 1.0, (0.3, 0.3), (20_000, 60_000), {}),
}


@dataclass
class Corpus:
    """A deterministic stream of realistic messages: threads, encodings, HTML, attachments."""

    seed: int = 42
    shape: Shape = MAILBOXES["standard"]
    me: tuple[str, str] = ("Bench User", "bench@example.org")
    rng: random.Random = field(init=False)
    _paragraphs: list[str] = field(init=False)
    _latin1_paragraphs: list[str] = field(init=False)
    _contacts: list[tuple[str, str]] = field(init=False)
    _recent: list[_Sent] = field(init=False, default_factory=list)
    _count: int = field(init=False, default=0)
    _clock: datetime = field(init=False, default=datetime(2023, 1, 2, 8, 0, tzinfo=UTC))
    # (Date, Message-ID) of every message made: what the API's default ordering (-date) lists first.
    dates: list[tuple[datetime, str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        """Build the pools (paragraphs, contacts) from the seed."""
        self.rng = random.Random(self.seed)
        self._paragraphs = [self._paragraph(latin1=False) for _ in range(700)]
        self._latin1_paragraphs = [self._paragraph(latin1=True) for _ in range(200)]
        self._contacts = [self._contact() for _ in range(400)]

    # -- pools --------------------------------------------------------------------------------

    def _paragraph(self, *, latin1: bool) -> str:
        rng = self.rng
        sentences = []
        for _ in range(rng.randint(2, 8)):
            words = rng.choices(_WORDS, k=rng.randint(6, 18))
            if latin1:
                words[rng.randrange(len(words))] = rng.choice(_LATIN1_WORDS)
            sentences.append(" ".join(words).capitalize() + rng.choice(".....?!"))
        return textwrap.fill(" ".join(sentences), width=72)

    def _contact(self) -> tuple[str, str]:
        rng = self.rng
        roll = rng.random()
        first = rng.choice(_FIRST_UTF8 if roll < 0.02 else _FIRST_LATIN1 if roll < 0.08 else _FIRST)
        roll = rng.random()
        last = rng.choice(_LAST_UTF8 if roll < 0.02 else _LAST_LATIN1 if roll < 0.07 else _LAST)
        address = f"{_ascii_of(first)}.{_ascii_of(last)}@{rng.choice(_DOMAINS)}"
        return f"{first} {last}", address

    # -- headers ------------------------------------------------------------------------------

    def _address(self, contact: tuple[str, str]) -> str:
        """``Name <addr>`` with RFC 2047 words for non-ASCII names (utf-8 base64 or iso-8859-1 q)."""
        name, address = contact
        if name.isascii():
            return formataddr((name, address))
        try:
            name.encode("iso-8859-1")
            charset = "iso-8859-1" if self.rng.random() < 0.5 else "utf-8"
        except UnicodeEncodeError:
            charset = "utf-8"
        return formataddr((name, address), charset=charset)

    def _subject_header(self, subject: str) -> str:
        if subject.isascii():
            return subject
        try:
            subject.encode("iso-8859-1")
            latin1 = self.rng.random() < 0.5
        except UnicodeEncodeError:
            latin1 = False
        if latin1:
            charset: Charset | str = "iso-8859-1"
        elif self.rng.random() < 0.5:
            charset = Charset("utf-8")
            charset.header_encoding = QP  # =?utf-8?q?...?= as well as =?utf-8?b?...?=
        else:
            charset = "utf-8"
        return Header(subject, charset, header_name="Subject").encode(maxlinelen=76, linesep="\r\n")

    def _new_subject(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            return rng.choice(_SUBJECTS_LATIN1)
        if roll < 0.10:
            return rng.choice(_SUBJECTS_UTF8)
        return f"{rng.choice(_TOPICS)} {rng.choice(_OBJECTS).format(n=rng.randint(1000, 99999))}"

    # -- bodies -------------------------------------------------------------------------------

    def _text(
        self,
        target: int,
        *,
        greeting: str,
        signature: str,
        latin1: bool,
        utf8: bool,
        quote: tuple[str, datetime, str] | None,
    ) -> tuple[str, list[str]]:
        rng = self.rng
        paragraphs: list[str] = []
        size = 0
        while size < target:
            pool = self._latin1_paragraphs if latin1 and rng.random() < 0.3 else self._paragraphs
            paragraph = rng.choice(pool)
            if utf8 and rng.random() < 0.2:
                paragraph += " " + " ".join(rng.sample(_UTF8_ONLY, 2))
            paragraphs.append(paragraph)
            size += len(paragraph) + 2
        text = f"{greeting}\n\n" + "\n\n".join(paragraphs) + f"\n\n{signature}\n"
        if quote is not None:
            name, date, quoted = quote
            text += f"\nOn {format_datetime(date)}, {name} wrote:\n" + "".join(
                f"> {line}\n" for line in quoted.splitlines()
            )
        return text, paragraphs

    @staticmethod
    def _html(paragraphs: list[str], charset: str, signature: str) -> str:
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        return (
            f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
            f'</head>\n<body style="font-family: sans-serif">\n{body}\n'
            f"<p>{html.escape(signature).replace(chr(10), '<br>')}</p>\n</body></html>\n"
        )

    def _attachment(self) -> tuple[bytes, str, str, str]:
        rng = self.rng
        low, high = self.shape.attachment_bytes
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        number = rng.randint(100, 9999)
        if rng.random() < 0.5:
            head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            name = f"Rechnung-Müller-{number}.pdf" if rng.random() < 0.15 else f"report-{number}.pdf"
            return head + rng.randbytes(size - len(head)), "application", "pdf", name
        head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00\x00\x00\x03\x00\x08\x06\x00\x00\x00"
        name = f"scan_{number}.png" if rng.random() < 0.9 else f"Übersicht {number}.png"
        return head + rng.randbytes(size - len(head)), "image", "png", name

    # -- messages -----------------------------------------------------------------------------

    def message(self, folder: str) -> tuple[bytes, str]:
        """The next message for ``folder`` as CRLF bytes, and its Maildir flags."""
        rng = self.rng
        self._count += 1
        self._clock += timedelta(seconds=rng.randint(60, 5400))
        date = self._clock
        outgoing = folder == "Sent"

        # Occasionally a thread whose first message we never got: its replies share a ghost parent.
        if rng.random() < 0.02:
            ghost = f"<{rng.getrandbits(64):016x}@lists.{rng.choice(_DOMAINS)}>"
            self._recent.append(
                _Sent(
                    ghost,
                    [],
                    self._new_subject(),
                    rng.choice(self._contacts),
                    date,
                    rng.choice(self._paragraphs),
                )
            )

        parent = (
            rng.choice(self._recent[-300:])
            if self._recent and rng.random() < self.shape.replies[1 if outgoing else 0]
            else None
        )
        sender = (
            self.me
            if outgoing
            else (
                parent.sender
                if parent is not None and parent.sender != self.me and rng.random() < 0.3
                else rng.choice(self._contacts)
            )
        )
        if parent is not None:
            subject = "Re: " + parent.root_subject
            root_subject = parent.root_subject
            references = (parent.references + [parent.message_id])[-12:]
            to = [parent.sender] if parent.sender != sender else [self.me]
        else:
            subject = root_subject = self._new_subject()
            references = []
            to = [self.me] if not outgoing else [rng.choice(self._contacts)]
        to += rng.sample(self._contacts, rng.choice((0, 0, 0, 1, 2, 3)))
        cc = rng.sample(self._contacts, rng.randint(1, 3)) if rng.random() < 0.3 else []
        domain = sender[1].rsplit("@", 1)[1]
        message_id = f"<{rng.getrandbits(48):012x}.{self._count}@{domain}>"

        # Body: log-uniform in the shape's range, some with an HTML alternative, 10% with an attachment.
        low, high = self.shape.body_bytes
        total = math.exp(rng.uniform(math.log(low), math.log(high)))
        with_html = rng.random() < self.shape.html
        latin1 = rng.random() < 0.2
        charset = "iso-8859-1" if latin1 and rng.random() < 0.4 else "utf-8"
        utf8 = charset == "utf-8" and rng.random() < 0.25
        greeting = f"Hi {to[0][0].split()[0]},"
        signature = f"Best regards,\n{sender[0]}\n{rng.choice(_TOPICS)} team"
        if charset == "iso-8859-1":
            signature += "\nMit freundlichen Grüßen"
        quote = None
        if parent is not None and rng.random() < 0.6:
            quote = (parent.sender[0], parent.date, parent.quote)
        text, paragraphs = self._text(
            int(total * (0.45 if with_html else 0.92)),
            greeting=greeting,
            signature=signature,
            latin1=latin1,
            utf8=utf8,
            quote=quote,
        )
        if charset == "iso-8859-1":
            try:
                text.encode(charset)
            except UnicodeEncodeError:  # a quoted name outside Latin-1
                charset = "utf-8"
        body = EmailMessage(policy=email_policy.SMTP)
        cte = (
            None if text.isascii() else rng.choice(("quoted-printable", "quoted-printable", "8bit", "base64"))
        )
        body.set_content(text, charset=charset, cte=cte)
        if with_html:
            page = self._html(paragraphs, charset, signature)
            body.add_alternative(
                page, subtype="html", charset=charset, cte=None if page.isascii() else "quoted-printable"
            )
        if rng.random() < 0.10:
            content, maintype, subtype, filename = self._attachment()
            body.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)

        ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        zone = timezone(timedelta(hours=rng.choice((-8, -5, 0, 1, 2, 9))))
        headers = [
            f"Return-Path: <{sender[1]}>",
            f"Received: from mail.{domain} (mail.{domain} [{ip}])\r\n\tby mx.example.org (Postfix) "
            f"with ESMTPS id {rng.getrandbits(40):010X}\r\n\tfor <{self.me[1]}>; {format_datetime(date)}",
            f"Message-ID: {message_id}",
            "Date: " + format_datetime(date.astimezone(zone)),
            "From: " + self._address(sender),
            "To: " + ",\r\n ".join(self._address(c) for c in to),
        ]
        if cc:
            headers.append("Cc: " + ",\r\n ".join(self._address(c) for c in cc))
        headers.append("Subject: " + self._subject_header(subject))
        if parent is not None:
            headers.append(f"In-Reply-To: {parent.message_id}")
            headers.append("References: " + "\r\n ".join(references))
        headers.append(f"X-Mailer: {rng.choice(_MAILERS)}")
        raw = "\r\n".join(headers).encode("ascii") + b"\r\n" + body.as_bytes()
        self.dates.append((date, message_id))

        self._recent.append(
            _Sent(message_id, references, root_subject, sender, date, paragraphs[0] if paragraphs else "")
        )
        if len(self._recent) > 2000:
            del self._recent[:1000]

        if outgoing:
            flags = "S"
        elif folder == "Archive":
            flags = "S" if rng.random() < 0.9 else "SF"
        else:
            roll = rng.random()
            flags = "S" if roll < 0.65 else "SF" if roll < 0.71 else "RS" if roll < 0.79 else ""
        return raw, flags


def folder_plan(n: int, shape: Shape) -> dict[str, int]:
    """How many of the N messages go where: the shape's shares (standard: a few hundred in Sent and
    Archive), the rest in INBOX."""
    others = {name: round(n * share) for name, share in shape.folders.items()}
    return {"INBOX": n - sum(others.values()), **others}


def fill_mailbox(dovecot, user: str, n: int, corpus: Corpus) -> tuple[dict[str, int], int]:  # noqa: ANN001
    """Deliver N messages (Maildir writes); ~3% arrive before the message they follow (threads merge)."""
    plan = folder_plan(n, corpus.shape)
    folders = [name for name, count in plan.items() for _ in range(count)]
    corpus.rng.shuffle(folders)
    total = 0
    held: tuple[str, bytes, str] | None = None
    for folder in folders:
        raw, flags = corpus.message(folder)
        total += len(raw)
        if held is None and corpus.rng.random() < 0.03:
            held = (folder, raw, flags)  # delivered after the next message
            continue
        dovecot.add_message(user, folder, raw, flags=flags)
        if held is not None:
            dovecot.add_message(user, held[0], held[1], flags=held[2])
            held = None
    if held is not None:
        dovecot.add_message(user, held[0], held[1], flags=held[2])
    return plan, total


# ------------------------------------------------------------------------------------------------
# The raw limit: imapclient + stdlib email parser, no database
# ------------------------------------------------------------------------------------------------

_RAW_HEADERS = ("Subject", "From", "To", "Cc", "Date", "Message-ID", "In-Reply-To", "References")


def raw_parse(raw: bytes) -> tuple:
    """What any mirror must do to a message: compat32 parse, decoded headers, decoded text parts."""
    import email
    from email.header import decode_header, make_header
    from email.utils import getaddresses, parsedate_to_datetime

    message = email.message_from_bytes(raw)
    fields: dict[str, str] = {}
    for name in _RAW_HEADERS:
        value = message.get(name)
        fields[name] = "" if value is None else str(make_header(decode_header(str(value))))
    senders = getaddresses([fields["From"]])
    recipients = getaddresses([fields["To"]]) + getaddresses([fields["Cc"]])
    try:
        date = parsedate_to_datetime(fields["Date"])
    except (TypeError, ValueError):
        date = None
    text = page = None
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        if content_type not in ("text/plain", "text/html"):
            continue
        if str(part.get("Content-Disposition", "")).lower().startswith("attachment"):
            continue
        payload = part.get_payload(decode=True) or b""
        decoded = payload.decode(part.get_content_charset() or "us-ascii", "replace")
        if content_type == "text/plain" and text is None:
            text = decoded
        elif content_type == "text/html" and page is None:
            page = decoded
    return fields, senders, recipients, date, text, page


@dataclass
class RawPass:
    """One pass of the raw limit."""

    messages: int
    bytes: int
    seconds: float
    cpu_seconds: float


def raw_limit(dovecot, user: str, batch_size: int) -> RawPass:  # noqa: ANN001
    """One STARTTLS connection fetching and parsing every message of the mailbox."""
    from imapclient import IMAPClient

    started, cpu_started = time.perf_counter(), time.process_time()
    client = IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=30)
    client.normalise_times = False
    client.starttls(ssl.create_default_context(cafile=str(dovecot.ca_cert_path)))
    client.login(user, PASSWORD)
    count = size = 0
    try:
        for flags, _, name in client.list_folders():
            if b"\\Noselect" in flags or any(flag in SKIP_SPECIAL_USE for flag in flags):
                continue
            client.select_folder(name, readonly=True)
            uids = sorted(client.search("ALL"))  # imapclient sends UID SEARCH ALL
            for start in range(0, len(uids), batch_size):
                batch = uids[start : start + batch_size]
                response = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE", "FLAGS", "RFC822.SIZE"])
                for uid in batch:
                    raw = response[uid][b"BODY[]"]
                    raw_parse(raw)
                    count += 1
                    size += len(raw)
    finally:
        client.logout()
    return RawPass(count, size, time.perf_counter() - started, time.process_time() - cpu_started)


def warm_up(dovecot, user: str) -> None:  # noqa: ANN001
    """Let Dovecot build its indexes (UID list, sizes, flags) before anything is timed."""
    with dovecot.client(user) as client:
        for flags, _, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            if uids:
                client.fetch(uids, ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])


# ------------------------------------------------------------------------------------------------
# imap2api
# ------------------------------------------------------------------------------------------------


def new_mirror(dovecot, mail_user: str) -> tuple[int, int]:  # noqa: ANN001
    """A fresh imap2api user and server row pointing at the mailbox (as tests/conftest.py's ``mirror``)."""
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import users as crud_users
    from imap2api.db import session_scope
    from imap2api.validation import validate_server

    data = validate_server(
        {
            "name": f"mailbox of {mail_user}",
            "host": dovecot.host,
            "port": dovecot.port,
            "username": mail_user,
            "password": PASSWORD,
            "use_ssl": False,
        }
    )
    with session_scope() as session:
        owner = crud_users.create_user(
            session, username="bench_" + secrets.token_hex(4), password=secrets.token_hex(8)
        )
        server = crud_servers.create_server(session, owner_id=owner.id, data=data)
        return owner.id, server.id


def timed_sync(server_id: int, *, trace_memory: bool = False, profile=None, stages=None, watch=None):  # noqa: ANN001, ANN201
    """Start a run and execute it in the foreground (``watch``: a FirstPageWatch started with it).

    Returns (run, wall seconds, CPU seconds of this process, peak traced bytes or None).
    """
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import sync_runs as crud_runs
    from imap2api.db import session_scope
    from imap2api.sync.engine import run_sync

    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
        run, _ = crud_runs.start_run(session, server=server, trigger="bench")
        run_id = run.id
    peak = None
    if trace_memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
    if stages is not None:
        stages.__enter__()
    if profile is not None:
        profile.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    if watch is not None:
        watch.start(started)
    try:
        run = run_sync(run_id)
    finally:
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if watch is not None:
            watch.stop()
        if profile is not None:
            profile.disable()
        if stages is not None:
            stages.__exit__(None, None, None)
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return run, elapsed, cpu, peak


class FirstPageWatch:
    """Polls the API's read path (the ``emails`` list: page 1 of 50, ordering -date) from a thread
    until it shows exactly the mailbox's newest 50 messages; ``seconds`` is then the time from the
    sync's start. Every 10 ms for the first 2 s, then every 100 ms, to weigh little on the sync."""

    def __init__(self, owner_id: int, newest: set[str]) -> None:
        import threading

        self.owner_id, self.newest = owner_id, newest
        self.seconds: float | None = None
        self.polls = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="first-50", daemon=True)
        self._started = 0.0

    def start(self, started: float) -> None:
        """Begin polling; ``started`` is the sync's start (perf_counter)."""
        self._started = started
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (the sync ended) and wait for the thread."""
        self._stopped.set()
        self._thread.join()

    def _poll(self) -> None:
        from imap2api.crud import emails as crud_emails
        from imap2api.db import session_scope

        filters = crud_emails.EmailFilters(owner_id=self.owner_id)
        while True:
            with session_scope() as session:
                page = crud_emails.list_emails(session, filters=filters, ordering=None, page=1, page_size=50)
                shown = {row.message_id for row in page.items}
            self.polls += 1
            elapsed = time.perf_counter() - self._started
            if shown == self.newest:
                self.seconds = elapsed
                return
            if self._stopped.wait(0.01 if elapsed < 2 else 0.1):
                return


class IndexCatchUp:
    """``index_all_pending`` in another thread, as the worker's ``index_search`` actor runs it."""

    def __init__(self) -> None:
        import threading

        self.indexed = 0
        self.seconds = self.cpu_seconds = 0.0
        self.first_chunk = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-catch-up", daemon=True)

    def start(self) -> IndexCatchUp:
        """Start the catch-up; returns once it has indexed its first chunk (or found nothing to do)."""
        self._thread.start()
        self.first_chunk.wait()
        return self

    def running(self) -> bool:
        """Whether the catch-up is still under way."""
        return self._thread.is_alive()

    def join(self) -> None:
        """Wait for the catch-up to finish."""
        self._thread.join()

    def _run(self) -> None:
        from imap2api.workers.search_index import index_all_pending

        started = time.perf_counter()
        cpu_started = time.thread_time()
        try:
            self.indexed = index_all_pending(on_progress=lambda _done: self.first_chunk.set())
        finally:
            self.first_chunk.set()
            self.seconds, self.cpu_seconds = time.perf_counter() - started, time.thread_time() - cpu_started


def email_count(server_id: int) -> int:
    """How many emails the mirror holds for a server."""
    from sqlalchemy import func
    from sqlmodel import select

    from imap2api.db import session_scope
    from imap2api.models import Email

    with session_scope() as session:
        statement = select(func.count()).select_from(Email).where(Email.imap_server_id == server_id)
        return session.exec(statement).one()


def check_full(run, server_id: int, n: int, label: str) -> None:  # noqa: ANN001
    """A full sync must succeed and mirror exactly N emails."""
    assert run.status == "success", f"{label}: run {run.id} ended {run.status}: {run.error_code} {run.error}"
    stored = email_count(server_id)
    assert stored == n, f"{label}: {stored} emails mirrored, expected {n}"


def change_mailbox(dovecot, user: str, corpus: Corpus) -> None:  # noqa: ANN001
    """10 mirrored messages get flagged (as a mail client would), then 10 new ones arrive in INBOX."""
    with dovecot.client(user) as client:
        client.select_folder("INBOX")
        unflagged = sorted(client.search(["UNFLAGGED"]))
        chosen = random.Random(7).sample(unflagged, 10)
        client.add_flags(chosen, [b"\\Flagged"])
    for _ in range(10):
        raw, flags = corpus.message("INBOX")
        dovecot.add_message(user, "INBOX", raw, flags=flags)


# ------------------------------------------------------------------------------------------------
# Where the time goes
# ------------------------------------------------------------------------------------------------

# (label, module, attribute): the attribute is wrapped with a timer while the full sync runs. The
# stages do not nest (commit happens after the insert, outside it), but fetch and parse run in a
# thread beside the database, so their times overlap. Missing attributes are skipped.
_STAGES = [
    ("IMAP: EXAMINE", "imap2api.sync.folder", "examine"),
    ("IMAP: UID SEARCH", "imap2api.sync.changes", "uid_search"),
    ("IMAP: UID FETCH sizes / flags", "imap2api.sync.folder", "uid_fetch"),
    ("IMAP: UID FETCH sizes / flags", "imap2api.sync.changes", "uid_fetch"),
    ("IMAP: UID FETCH bodies (incl. imapclient parse)", "imap2api.sync.batch", "_fetch"),
    ("MIME parse (parse_message)", "imap2api.sync.batch", "parse_message"),
    ("row building (email_row)", "imap2api.sync.batch", "email_row"),
    ("threading (assign_threads)", "imap2api.crud.threads", "assign_threads"),
    ("new-mail check (_arrivals)", "imap2api.sync.batch", "_arrivals"),
    ("DB insert (insert_emails)", "imap2api.crud.mirror", "insert_emails"),
    ("events (_record_events)", "imap2api.sync.batch", "_record_events"),
    ("notifications (pubsub.publish)", "imap2api.pubsub", "publish"),
    ("DB commit (Session.commit)", "sqlalchemy.orm.session", "Session.commit"),
]


class StageTimer:
    """Wall time per sync stage, by wrapping the stage functions (about a microsecond per call)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list[tuple[object, str, object]] = []

    def __enter__(self) -> StageTimer:
        import functools
        import importlib

        for label, module_name, path in _STAGES:
            try:
                owner: object = importlib.import_module(module_name)
            except ImportError:
                continue
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent, None)
            original = getattr(owner, name, None) if owner is not None else None
            if original is None:
                continue
            self.seconds[label], self.calls[label] = 0.0, 0
            setattr(owner, name, functools.update_wrapper(self._timed(label, original), original))
            self._undo.append((owner, name, original))
        return self

    def _timed(self, label: str, original):  # noqa: ANN001, ANN202
        seconds, calls, clock = self.seconds, self.calls, time.perf_counter

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = clock()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += clock() - started
                calls[label] += 1

        return timed

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def table(self, total: float) -> list[str]:
        """One line per stage, biggest first (the stages overlap: IMAP and parsing run in a thread
        beside the database, imap2api/sync/pipeline.py)."""
        rows = sorted(self.seconds.items(), key=lambda item: -item[1])
        lines = [
            f"  {label:<52}{seconds:>8.2f}s{seconds / total:>8.1%}{self.calls[label]:>8} calls"
            for label, seconds in rows
            if self.calls[label]
        ]
        return lines


def top_functions(stats_path: str, limit: int = 25) -> str:
    """The top cumulative entries of a cProfile dump, as pstats prints them."""
    import io
    import pstats

    stream = io.StringIO()
    stats = pstats.Stats(stats_path, stream=stream)
    stats.sort_stats("cumulative").print_stats(limit)
    text = stream.getvalue()
    return text[text.index("   ncalls") :] if "   ncalls" in text else text


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def prepare_environment(data_dir: str, **extra: str) -> None:
    """Settings are read on first use: fix the environment before anything reads one (as conftest
    does); ``extra`` sets more, ``rate_limit_enabled="false"`` as ``IMAP2API_RATE_LIMIT_ENABLED``."""
    os.environ["IMAP2API_DATA_DIR"] = data_dir
    os.environ.setdefault("IMAP2API_SECRET_KEY", "bench-" + secrets.token_hex(16))
    os.environ.pop("IMAP2API_DATABASE_URL", None)
    os.environ.pop("IMAP2API_REDIS_URL", None)
    os.environ["IMAP2API_SCHEDULER_ENABLED"] = "false"
    for name, value in extra.items():
        os.environ[f"IMAP2API_{name.upper()}"] = value


@contextlib.contextmanager
def bench_environment(database: str, label: str) -> Iterator[Any]:
    """A scratch data directory, database (SQLite, or a fresh PostgreSQL one) and Dovecot, migrated;
    yields the Dovecot server, None when Dovecot is not installed. Everything is removed afterwards."""
    data_dir = tempfile.mkdtemp(prefix="imap2api-bench-")
    prepare_environment(data_dir)
    from tests.support.dovecot import DovecotServer, find_dovecot

    if find_dovecot() is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        yield None
        return
    pg_name = None
    try:
        from imap2api.config import reload_settings
        from imap2api.db import dispose_engines, migrate

        database_url = None
        if database == "postgresql":
            from tests.support.services import create_postgres_database

            pg_name = f"imap2api_bench_{label}_{os.getpid()}_{secrets.token_hex(3)}"
            database_url = create_postgres_database(pg_name)
        with DovecotServer() as dovecot:
            os.environ["IMAP2API_IMAP_CA_FILE"] = str(dovecot.ca_cert_path)
            reload_settings(
                data_dir=data_dir, database_url=database_url, imap_ca_file=str(dovecot.ca_cert_path)
            )
            dispose_engines()
            migrate()
            yield dovecot
    finally:
        from imap2api.db import dispose_engines

        dispose_engines()
        if pg_name is not None:
            from tests.support.services import drop_postgres_database

            drop_postgres_database(pg_name)
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark and print the summary; 0 whatever the numbers say."""
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="N, the mailbox size (default 10000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed (default 42)")
    parser.add_argument(
        "--mailbox",
        choices=sorted(MAILBOXES),
        default="standard",
        help="standard: ~31 KB messages in INBOX, Sent, Archive; small: ~14.5 KB, all in INBOX",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="also cProfile one extra full sync (fresh server) into FILE; print its hotspots",
    )
    args = parser.parse_args(argv)
    if args.messages < 8:
        parser.error("--messages must be at least 8")
    n, quarter = args.messages, max(2, args.messages // 4)

    with bench_environment(args.database, "sync") as dovecot:
        if dovecot is None:
            return 2
        from imap2api.config import settings

        _run(args, n, quarter, dovecot, settings)
    return 0


def _row(
    label: str,
    seconds: float,
    cpu: float | None = None,
    messages: int | None = None,
    size: int | None = None,
    note: str = "",
) -> str:
    """One line of the measurement table."""
    text = f"{label:<42}{seconds:>9.3f}s"
    text += f"{cpu:>9.2f}s" if cpu is not None else " " * 10
    text += f"{messages / seconds:>9.0f}" if messages else " " * 9
    text += f"{size / MB / seconds:>8.1f}" if size else " " * 8
    return (text + (f"  {note}" if note else "")).rstrip()


def _run(args: argparse.Namespace, n: int, quarter: int, dovecot, settings) -> None:  # noqa: ANN001
    """The measurements, then the summary."""
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731 - progress, not results
    load_before = os.getloadavg()[0]

    # 1. The mailbox.
    shape = MAILBOXES[args.mailbox]
    say(f"filling a {args.mailbox} mailbox with {n} messages...")
    started = time.perf_counter()
    corpus = Corpus(seed=args.seed, shape=shape)
    big_user = dovecot.add_user()
    plan, total_bytes = fill_mailbox(dovecot, big_user, n, corpus)
    newest = {message_id for _, message_id in sorted(corpus.dates, reverse=True)[:FIRST_PAGE]}
    warm_up(dovecot, big_user)
    say(f"  {total_bytes / MB:.1f} MB in {time.perf_counter() - started:.1f} s")

    # 2. Raw limit, first pass (a second one follows the full sync; the faster one counts).
    say("raw limit, pass 1 (imapclient + email.message_from_bytes, no database)...")
    raw_passes = [raw_limit(dovecot, big_user, settings.sync_batch_messages)]

    # 3. Full sync, with a reader polling for the newest 50 messages.
    say("full sync through imap2api (run_sync)...")
    owner_id, server_id = new_mirror(dovecot, big_user)
    stages = StageTimer()
    watch = FirstPageWatch(owner_id, newest)
    full_run, full_seconds, full_cpu, _ = timed_sync(server_id, stages=stages, watch=watch)
    check_full(full_run, server_id, n, "full sync")

    # 4a. No-change re-sync while the search index catches up in another thread (SQLite's index is
    # built after the run: the worker's index_search actor starts as the run ends), then once more
    # after the catch-up.
    say("no-change re-sync while the search index catches up (index_all_pending in a thread)...")
    catch_up = IndexCatchUp().start()
    busy_run, busy_seconds, busy_cpu, _ = timed_sync(server_id)
    overlapped = catch_up.running()
    catch_up.join()
    indexed, index_seconds, index_cpu = catch_up.indexed, catch_up.seconds, catch_up.cpu_seconds
    say("no-change re-sync...")
    same_run, same_seconds, same_cpu, _ = timed_sync(server_id)
    for run in (busy_run, same_run):
        assert run.status == "success", run.error
        assert (run.messages_new, run.messages_updated, run.bytes_fetched) == (0, 0, 0), run

    say("raw limit, pass 2...")
    raw_passes.append(raw_limit(dovecot, big_user, settings.sync_batch_messages))
    for raw in raw_passes:
        assert raw.messages == n, f"raw pass saw {raw.messages} messages, expected {n}"
    raw = min(raw_passes, key=lambda item: item.seconds)

    # 5. Peak memory: N (fresh server on the same mailbox), then N/4 (fresh mailbox and server).
    say(f"peak memory of a full sync of {n} (tracemalloc)...")
    _, mem_server = new_mirror(dovecot, big_user)
    mem_run, mem_seconds, mem_cpu, peak_n = timed_sync(mem_server, trace_memory=True)
    check_full(mem_run, mem_server, n, "traced full sync (N)")
    say(f"peak memory of a full sync of {quarter} (tracemalloc)...")
    small_user = dovecot.add_user()
    fill_mailbox(dovecot, small_user, quarter, Corpus(seed=args.seed + 1, shape=shape))
    warm_up(dovecot, small_user)
    _, small_server = new_mirror(dovecot, small_user)
    small_run, small_seconds, small_cpu, peak_quarter = timed_sync(small_server, trace_memory=True)
    check_full(small_run, small_server, quarter, "traced full sync (N/4)")

    # 4b. Re-sync after 10 new messages and 10 flag changes.
    say("re-sync after 10 new messages and 10 flag changes...")
    change_mailbox(dovecot, big_user, corpus)
    delta_run, delta_seconds, delta_cpu, _ = timed_sync(server_id)
    assert delta_run.status == "success", delta_run.error
    delta_note = f"({delta_run.messages_new} new, {delta_run.messages_updated} flags updated)"

    # Optional: one cProfiled full sync on a fresh server (function-level hotspots).
    profile_seconds = None
    if args.profile:
        import cProfile

        say(f"cProfiled full sync of {n + 10} on a fresh server (-> {args.profile})...")
        _, profile_server = new_mirror(dovecot, big_user)
        profiler = cProfile.Profile()
        profile_run, profile_seconds, _, _ = timed_sync(profile_server, profile=profiler)
        check_full(profile_run, profile_server, n + 10, "profiled full sync")
        profiler.dump_stats(args.profile)

    # 6. Summary.
    full_rate, raw_rate = n / full_seconds, raw.messages / raw.seconds
    rate_ratio = full_rate / raw_rate
    index_ratio = n / (full_seconds + index_seconds) / raw_rate
    cpu_ratio = raw.cpu_seconds / full_cpu
    resync_ratio = max(same_seconds, busy_seconds) / full_seconds
    first_text = f"{watch.seconds:.3f} s" if watch.seconds is not None else "not before the sync ended"
    memory_ratio = peak_n / peak_quarter
    memory_ok = TARGET_MEMORY_RATIO[0] <= memory_ratio <= TARGET_MEMORY_RATIO[1]
    database = settings.sqlalchemy_url.split(":", 1)[0]
    rule = "-" * 78
    lines = [
        "",
        f"imap2api sync benchmark: {args.mailbox} mailbox, N={n} "
        f"({', '.join(f'{k} {v}' for k, v in plan.items())}), {total_bytes / n / 1000:.1f} KB/message, "
        f"{total_bytes / MB:.1f} MB, {database}, batches of {settings.sync_batch_messages}",
        f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs",
        "",
        f"{'measurement':<42}{'wall':>10}{'CPU':>10}{'msgs/s':>9}{'MB/s':>8}",
        rule,
        _row(
            "raw limit (imapclient + stdlib parse)",
            raw.seconds,
            raw.cpu_seconds,
            raw.messages,
            raw.bytes,
            "(best of " + ", ".join(f"{item.seconds:.2f}" for item in raw_passes) + " s)",
        ),
        _row(f"full sync (run_sync, {n} new)", full_seconds, full_cpu, n, full_run.bytes_fetched),
        _row(f"search index catch-up ({indexed} emails)", index_seconds, index_cpu, indexed or None),
        _row(
            "no-change re-sync during the catch-up",
            busy_seconds,
            busy_cpu,
            note="" if overlapped else "(the catch-up had ended before it did)",
        ),
        _row("no-change re-sync after the catch-up", same_seconds, same_cpu),
        _row("re-sync after 10 new + 10 flag changes", delta_seconds, delta_cpu, note=delta_note),
        _row(f"full sync N={n} under tracemalloc", mem_seconds, mem_cpu, n),
        _row(f"full sync N/4={quarter} under tracemalloc", small_seconds, small_cpu, quarter),
        "",
        f"time to first 50: {watch.polls} polls of the emails list (page 1 of {FIRST_PAGE}, -date); "
        "the re-sync ratio is the slower of the two no-change re-syncs",
        f"peak Python memory in run_sync (tracemalloc): N={n}: {peak_n / MB:.1f} MB, "
        f"N/4={quarter}: {peak_quarter / MB:.1f} MB",
        "",
        f"{'target':<46}{'value':>10}{'goal':>14}  result",
        rule,
        f"{'full sync rate / raw limit rate':<46}{rate_ratio:>10.2f}"
        f"{'>= ' + format(TARGET_RATE_RATIO, '.2f'):>14}"
        f"  {_verdict(rate_ratio >= TARGET_RATE_RATIO)}",
        f"{'  (same, by CPU time of this process)':<46}{cpu_ratio:>10.2f}",
        f"{'  (sync + search index catch-up, for info)':<46}{index_ratio:>10.2f}",
        f"{'time to first 50 (newest 50 readable)':<46}{first_text:>10}"
        f"{'<= ' + format(TARGET_FIRST_PAGE_SECONDS, '.0f') + ' s':>14}"
        f"  {_verdict(watch.seconds is not None and watch.seconds <= TARGET_FIRST_PAGE_SECONDS)}",
        f"{'no-change re-sync time / full sync time':<46}{resync_ratio:>10.4f}"
        f"{'<= ' + format(TARGET_RESYNC_RATIO, '.2f'):>14}  {_verdict(resync_ratio <= TARGET_RESYNC_RATIO)}",
        f"{'peak memory N / peak memory N/4':<46}{memory_ratio:>10.2f}"
        f"{format(TARGET_MEMORY_RATIO[0], '.2f') + '..' + format(TARGET_MEMORY_RATIO[1], '.2f'):>14}"
        f"  {_verdict(memory_ok)}",
        "",
        f"where the full sync's {full_seconds:.2f} s went (wall time per stage; fetch and parse run in a "
        "thread beside the database, so stages overlap and do not add up):",
        *stages.table(full_seconds),
    ]
    if profile_seconds is not None:
        lines += [
            "",
            f"cProfile of an extra full sync ({profile_seconds:.1f} s with profiler overhead), "
            f"top functions by cumulative time (full dump: {args.profile}):",
            "",
            top_functions(args.profile).rstrip(),
        ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
