"""imap2api against real IMAP servers: Cyrus (both namespaces), Courier, GNU imap4d and Dovecot.

Run ``bash bench/servers/setup.sh`` once (as root), then from the project root::

    .venv/bin/python -m bench.servers.check                       # every server, SQLite
    .venv/bin/python -m bench.servers.check --servers courier,dovecot --messages 200
    .venv/bin/python -m bench.servers.check --trace               # + per-command times of each re-sync

Per server, on a mailbox emptied first (Dovecot: a throw-away one, as bench/ uses), every change
made over IMAP (APPEND, STORE, MOVE or COPY + EXPUNGE, DELETE/CREATE), the way any client would:

- ``full sync``: every message of every folder but the trash, with the flags, subject, sender and
  date the server reports (FETCH ENVELOPE FLAGS), nothing more;
- ``namespace``: the mirrored folders are the server's LIST names (``INBOX.`` prefix and ``.`` on
  Courier and classic Cyrus) and delimiters, a sub-folder included, the trash left out;
- ``incremental``: after 7 new, 4 expunged, 4 moved (INBOX to Archive), 8 flag changes, the mirror is
  exact again, the run counts them (7 new, 4 deleted, 12 updated: a moved message keeps its id);
- ``email.received``: exactly the 7 new messages are announced (not the moved ones);
- ``no-change``: a sync right after changes nothing and announces nothing;
- ``uidvalidity``: a folder deleted and created again (new UIDVALIDITY) is mirrored afresh, exactly;
- ``starttls``: the syncs ran with tls_mode "starttls", the certificate verified.

Prints a table (server, check, PASS/FAIL, detail) and the full and incremental sync times. The exit
status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import ssl
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

BASE = "/var/lib/imap2api-servers"
CA_FILE = f"{BASE}/tls/cert.pem"
CHANGES = {"new": 7, "expunged": 4, "moved": 4, "flagged": 8}


@dataclass(frozen=True)
class Target:
    """An IMAP server to check: where it listens, with which account."""

    name: str
    port: int
    user: str = "imapbench"
    password: str = "secret"
    host: str = "127.0.0.1"


TARGETS = {
    "cyrus-alt": Target("cyrus-alt", 10143),
    "cyrus-inbox": Target("cyrus-inbox", 10144),
    "courier": Target("courier", 10145),
    "imap4d": Target("imap4d", 10146),
    "dovecot": Target("dovecot", 0),  # a throw-away Dovecot; port and user are known once it runs
}


@dataclass
class Report:
    """The checks of one server, and its sync times."""

    server: str
    rows: list[tuple[str, bool, str]] = field(default_factory=list)
    full_seconds: float | None = None
    incremental_seconds: float | None = None
    messages: int = 0
    commands: list[tuple[str, int, float]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record one check."""
        self.rows.append((name, bool(ok), detail))
        return ok


# --- messages and the mailbox, over IMAP ---------------------------------------------------------

SUBJECTS = ["Quarterly report", "Grüße aus München", "Re: lunch?", "Invoice 2024-117", "Zürich trip", "ok"]
SENDERS = [
    ("Alice Example", "alice@example.com"),
    ("Bérénice Dupont", "berenice@example.fr"),
    ("", "noreply@example.net"),
    ("Weber, Jürgen", "weber@example.de"),
]


def make_raw(rng: random.Random, label: str) -> bytes:
    """A deterministic, varied message (non-ASCII subjects and names, dates in several zones)."""
    message = EmailMessage()
    name, address = rng.choice(SENDERS)
    message["Subject"] = f"{rng.choice(SUBJECTS)} {label}"
    message["From"] = f'"{name}" <{address}>' if name else address
    message["To"] = "Bench <imapbench@example.org>"
    zone = UTC if rng.random() < 0.5 else timezone(timedelta(hours=rng.choice([-7, 1, 2, 9])))
    date = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(500_000))
    message["Date"] = format_datetime(date.astimezone(zone))
    message["Message-ID"] = make_msgid(idstring=secrets.token_hex(6), domain="bench.example")
    message.set_content(f"Body of {label}.\n" + "Lorem ipsum dolor sit amet. " * rng.randrange(1, 40) + "\n")
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def connect(target: Target, ca_file: str):  # noqa: ANN201 - IMAPClient
    """A logged-in imapclient connection over STARTTLS (the test's own, not imap2api's)."""
    from imapclient import IMAPClient

    client = IMAPClient(target.host, port=target.port, ssl=False, timeout=30)
    client.starttls(ssl.create_default_context(cafile=ca_file))
    client.login(target.user, target.password)
    return client


@dataclass(frozen=True)
class Layout:
    """The folders of the check, named in the server's personal namespace."""

    prefix: str
    delimiter: str

    def name(self, *parts: str) -> str:
        """A folder below the namespace prefix."""
        return self.prefix + self.delimiter.join(parts)

    @property
    def synced(self) -> list[str]:
        """The folders imap2api should mirror (every one but the trash)."""
        return ["INBOX", self.name("Archive"), self.name("Projects"), self.name("Projects", "Sub")]

    @property
    def trash(self) -> str:
        """The trash, which the default server settings leave out."""
        return self.name("Trash")


def reset_mailbox(client) -> Layout:  # noqa: ANN001
    """Empty the mailbox (every folder but INBOX deleted, INBOX emptied); returns its namespace."""
    personal = client.namespace().personal
    prefix, delimiter = personal[0] if personal else ("", "/")
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode()
    delimiter = delimiter or "/"
    for _ in range(5):  # children first; a server may refuse a parent until they are gone
        names = [name for _, _, name in client.list_folders() if name.upper() != "INBOX"]
        if not names:
            break
        for name in sorted(names, key=lambda n: -len(n)):
            with contextlib.suppress(Exception):
                client.delete_folder(name)
    # What stays (Dovecot's auto-created Sent, Courier's Trash) is emptied instead.
    for _, _, name in client.list_folders():
        client.select_folder(name)
        uids = client.search("ALL")
        if uids:
            client.delete_messages(uids)
            client.expunge()
        client.close_folder()
    return Layout(prefix=prefix, delimiter=delimiter)


def settle(client) -> None:  # noqa: ANN001
    """SELECT every folder read-write once, as the user's mail client would after new mail.

    imap4d 3.15 gives a Maildir a new UIDVALIDITY at every read-only EXAMINE for as long as mail sits
    in new/; a read-write SELECT moves it to cur/. Harmless elsewhere (\\Recent is cleared, nothing else).
    """
    for flags, _, name in client.list_folders():
        if b"\\noselect" not in {flag.lower() for flag in flags}:
            client.select_folder(name)
            client.close_folder()


def fill(client, layout: Layout, rng: random.Random, messages: int) -> int:  # noqa: ANN001
    """Create the folders and APPEND ``messages`` to INBOX plus a few elsewhere; returns how many."""
    existing = {name for _, _, name in client.list_folders()}
    for name in [
        layout.name("Archive"),
        layout.name("Projects"),
        layout.name("Projects", "Sub"),
        layout.trash,
    ]:
        if name not in existing:
            client.create_folder(name)
    plan = {
        "INBOX": messages,
        layout.name("Archive"): 5,
        layout.name("Projects"): 3,
        layout.name("Projects", "Sub"): 2,
        layout.trash: 2,
    }
    flag_choices = [(), (), (b"\\Seen",), (b"\\Seen", b"\\Answered"), (b"\\Flagged",)]
    if b"\\*" in client.select_folder("INBOX", readonly=True).get(b"PERMANENTFLAGS", ()):
        flag_choices.append((b"\\Seen", b"$Label1"))  # keywords where the server keeps them (not imap4d)
    client.unselect_folder() if client.has_capability("UNSELECT") else client.close_folder()
    for folder, count in plan.items():
        for n in range(count):
            flags = rng.choice(flag_choices)
            when = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(5000))
            client.append(folder, make_raw(rng, f"{folder} #{n}"), flags=flags, msg_time=when)
    return sum(plan.values())


def server_view(client, folders: list[str]) -> dict[tuple[str, int], dict[str, Any]]:  # noqa: ANN001
    """(folder, UID) → flags, subject, sender, date as the server reports them (ENVELOPE, FLAGS)."""
    from imap2api.sync.imap import flags_text

    view = {}
    for folder in folders:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        for uid, data in (client.fetch(uids, ["FLAGS", "ENVELOPE"]) if uids else {}).items():
            envelope = data[b"ENVELOPE"]
            subject = str(make_header(decode_header((envelope.subject or b"").decode())))
            sender = envelope.from_[0] if envelope.from_ else None
            address = f"{sender.mailbox.decode()}@{sender.host.decode()}".lower() if sender else ""
            date = envelope.date
            if isinstance(date, datetime) and date.tzinfo is None:
                date = date.replace(tzinfo=UTC)
            view[(folder, uid)] = {
                "flags": flags_text(data[b"FLAGS"]),
                "subject": subject,
                "sender": address,
                "date": date.astimezone(UTC).replace(microsecond=0) if isinstance(date, datetime) else None,
            }
    return view


# --- imap2api ------------------------------------------------------------------------------------


def new_server_row(host: str, port: int, user: str, password: str, tls_mode: str) -> tuple[int, int]:
    """A fresh imap2api user and IMAP server row; returns (owner id, server id)."""
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import users as crud_users
    from imap2api.db import session_scope
    from imap2api.validation import validate_server

    data = validate_server(
        {
            "name": f"check {user}@{host}:{port}",
            "host": host,
            "port": port,
            "username": user,
            "password": password,
            "tls_mode": tls_mode,
        }
    )
    with session_scope() as session:
        owner = crud_users.create_user(
            session, username="check_" + secrets.token_hex(4), password=secrets.token_hex(8)
        )
        assert owner.id is not None
        server = crud_servers.create_server(session, owner_id=owner.id, data=data)
        assert server.id is not None
        return owner.id, server.id


def sync(server_id: int):  # noqa: ANN201 - the finished SyncRun and its wall time
    """One foreground sync run, timed."""
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import sync_runs as crud_runs
    from imap2api.db import session_scope
    from imap2api.sync.engine import run_sync

    with session_scope() as session:
        server = crud_servers.get_server(session, owner_id=None, server_id=server_id)
        run, _ = crud_runs.start_run(session, server=server, trigger="check")
        run_id = run.id
    assert run_id is not None
    started = time.perf_counter()
    run = run_sync(run_id)
    return run, time.perf_counter() - started


def mirror_view(server_id: int) -> dict[tuple[str, int], dict[str, Any]]:
    """(folder, UID) → flags, subject, sender, date as mirrored."""
    from sqlmodel import select

    from imap2api.db import session_scope
    from imap2api.models import Email

    with session_scope() as session:
        rows = session.exec(select(Email).where(Email.imap_server_id == server_id)).all()
        view = {}
        for email in rows:
            date = email.date if email.date.tzinfo else email.date.replace(tzinfo=UTC)
            view[(email.folder, email.uid)] = {
                "flags": email.flags,
                "subject": email.subject,
                "sender": email.sender.lower(),
                "date": date.astimezone(UTC).replace(microsecond=0),
            }
        return view


def mirrored_folders(server_id: int) -> dict[str, tuple[str, int | None]]:
    """Folder name → (delimiter, uidvalidity) as the mirror stores them."""
    from sqlmodel import select

    from imap2api.db import session_scope
    from imap2api.models import Folder

    with session_scope() as session:
        statement = select(Folder.name, Folder.delimiter, Folder.uidvalidity).where(
            Folder.imap_server_id == server_id
        )
        return {name: (delimiter, uidvalidity) for name, delimiter, uidvalidity in session.exec(statement)}


def events(owner_id: int, server_id: int, type: str) -> list[dict]:
    """The server's outbox events of one type, with parsed payloads."""
    from imap2api.crud import events as crud_events
    from imap2api.db import session_scope

    with session_scope() as session:
        rows = crud_events.list_events(session, owner_id=owner_id, type=type, server_id=server_id)
        return [crud_events.event_data(row) for row in rows]


def differences(mirrored: dict, remote: dict, limit: int = 3) -> str:
    """What differs between the mirror and the server, briefly ("" when they agree)."""
    if mirrored == remote:
        return ""
    parts = []
    missing = sorted(set(remote) - set(mirrored))
    extra = sorted(set(mirrored) - set(remote))
    if missing:
        parts.append(f"{len(missing)} not mirrored, e.g. {missing[:limit]}")
    if extra:
        parts.append(f"{len(extra)} mirrored but gone, e.g. {extra[:limit]}")
    wrong = [
        (key, field_name)
        for key in sorted(set(remote) & set(mirrored))
        for field_name in remote[key]
        if remote[key][field_name] != mirrored[key][field_name]
    ]
    if wrong:
        key, name = wrong[0]
        parts.append(
            f"{len(wrong)} wrong fields, e.g. {key} {name}: mirror {mirrored[key][name]!r} "
            f"server {remote[key][name]!r}"
        )
    return "; ".join(parts)


# --- the checks of one server ------------------------------------------------------------------------


def check_server(target: Target, args: argparse.Namespace, ca_file: str) -> Report:
    """Every check against one server."""
    report = Report(target.name)
    rng = random.Random(f"{args.seed}-{target.name}")
    try:
        _checks(target, args, ca_file, rng, report)
    except Exception as exc:  # noqa: BLE001 - one server's crash is a failed check, not the end
        report.check("(crashed)", False, f"{type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
    return report


def _checks(
    target: Target, args: argparse.Namespace, ca_file: str, rng: random.Random, report: Report
) -> None:
    say(f"{target.name}: emptying and filling the mailbox...")
    with _logged_in(target, ca_file) as imap:
        layout = reset_mailbox(imap)
        report.messages = fill(imap, layout, rng, args.messages)
        settle(imap)
    trace = None
    if args.trace:
        from tests.support.imap_proxy import ImapProxy

        trace = ImapProxy(target.host, target.port).start()
        owner_id, server_id = new_server_row(trace.host, trace.port, target.user, target.password, "none")
    else:
        owner_id, server_id = new_server_row(
            target.host, target.port, target.user, target.password, "starttls"
        )
    try:
        # Full sync.
        say(f"{target.name}: full sync...")
        run, report.full_seconds = sync(server_id)
        with _logged_in(target, ca_file) as imap:
            remote = server_view(imap, layout.synced)
            listed = {
                name: delimiter
                for flags, delimiter, name in imap.list_folders()
                if b"\\noselect" not in {flag.lower() for flag in flags}
                and not {b"\\trash", b"\\junk"} & {flag.lower() for flag in flags}
            }
        mirrored = mirror_view(server_id)
        report.check(
            "full sync",
            run.status == "success" and not differences(mirrored, remote),
            run.error or differences(mirrored, remote) or f"{len(mirrored)} messages exact",
        )
        folders = mirrored_folders(server_id)
        # Every folder the server lists (Dovecot adds Sent and Drafts) but the trash, with its delimiter.
        expected = {
            name: delimiter.decode() if isinstance(delimiter, bytes) else delimiter or ""
            for name, delimiter in listed.items()
            if name != layout.trash
        }
        got = {name: delimiter for name, (delimiter, _) in folders.items()}
        report.check(
            "namespace",
            got == expected,
            f"{sorted(got)}" if got == expected else f"mirror {got} server {expected}",
        )

        # Incremental: the change set of issue #12, item 9.
        with _logged_in(target, ca_file) as imap:
            imap.select_folder("INBOX")
            inbox = sorted(imap.search("ALL"))
            chosen = rng.sample(inbox, CHANGES["expunged"] + CHANGES["moved"] + CHANGES["flagged"])
            expunged, moved, flagged = chosen[:4], chosen[4:8], chosen[8:]
            current = imap.get_flags(flagged)
            for uid in flagged:  # always a change: take \Seen or \Flagged away, or flag it
                for flag in (b"\\Seen", b"\\Flagged"):
                    if flag in current[uid]:
                        imap.remove_flags([uid], [flag])
                        break
                else:
                    imap.add_flags([uid], [b"\\Flagged"])
            if imap.has_capability("MOVE"):
                imap.move(moved, layout.name("Archive"))
            else:  # what a client does without MOVE
                imap.copy(moved, layout.name("Archive"))
                imap.delete_messages(moved)
                imap.expunge()
            imap.delete_messages(expunged)
            imap.expunge()
            new_subjects = []
            for n in range(CHANGES["new"]):
                raw = make_raw(rng, f"new {n}")
                new_subjects.append(
                    str(
                        make_header(
                            decode_header(raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode())
                        )
                    )
                )
                imap.append("INBOX", raw, flags=(), msg_time=datetime.now(UTC))
            settle(imap)
        before = len(events(owner_id, server_id, "email.received"))
        if trace is not None:
            trace.clear()
        run, report.incremental_seconds = sync(server_id)
        if trace is not None:
            report.commands = _command_table(trace)
        with _logged_in(target, ca_file) as imap:
            remote = server_view(imap, layout.synced)
        mirrored = mirror_view(server_id)
        counts = (run.messages_new, run.messages_deleted, run.messages_updated)
        report.check(
            "incremental",
            run.status == "success" and not differences(mirrored, remote) and counts == (7, 4, 12),
            run.error
            or differences(mirrored, remote)
            or f"new/deleted/updated {counts[0]}/{counts[1]}/{counts[2]}",
        )
        received = events(owner_id, server_id, "email.received")[before:]
        subjects = sorted(event["subject"] for event in received)
        report.check(
            "email.received",
            subjects == sorted(new_subjects),
            f"{len(received)} announced" + ("" if subjects == sorted(new_subjects) else f": {subjects}"),
        )

        # No change.
        run, seconds = sync(server_id)
        counts = (run.messages_new, run.messages_deleted, run.messages_updated)
        quiet = len(events(owner_id, server_id, "email.received")) == before + len(received)
        report.check(
            "no-change",
            run.status == "success" and counts == (0, 0, 0) and quiet,
            run.error or f"{seconds:.2f} s, new/deleted/updated {counts[0]}/{counts[1]}/{counts[2]}",
        )

        # A folder recreated: new UIDVALIDITY.
        sub = layout.name("Projects", "Sub")
        old_validity = mirrored_folders(server_id)[sub][1]
        time.sleep(1.1)  # Courier and imap4d take UIDVALIDITY from the clock
        with _logged_in(target, ca_file) as imap:
            imap.delete_folder(sub)
            imap.create_folder(sub)
            for n in range(3):
                imap.append(sub, make_raw(rng, f"reborn {n}"), flags=(b"\\Seen",))
            settle(imap)
            new_validity = imap.folder_status(sub, [b"UIDVALIDITY"])[b"UIDVALIDITY"]
        before = len(events(owner_id, server_id, "email.received"))
        run, _ = sync(server_id)
        with _logged_in(target, ca_file) as imap:
            remote = server_view(imap, layout.synced)
        mirrored = mirror_view(server_id)
        stored_validity = mirrored_folders(server_id)[sub][1]
        announced = len(events(owner_id, server_id, "email.received")) - before
        ok = (
            run.status == "success"
            and new_validity != old_validity
            and stored_validity == new_validity
            and not differences(mirrored, remote)
            and announced == 0
        )
        report.check(
            "uidvalidity",
            ok,
            run.error
            or differences(mirrored, remote)
            or f"{old_validity} → {new_validity} (mirror {stored_validity}), {announced} announced",
        )
        if trace is None:
            report.check("starttls", True, "all syncs over STARTTLS, certificate verified")
        else:
            report.check("starttls", _starttls_works(target), "checked apart (--trace syncs in clear text)")
    finally:
        if trace is not None:
            trace.stop()


@contextlib.contextmanager
def _logged_in(target: Target, ca_file: str) -> Iterator[Any]:
    client = connect(target, ca_file)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _starttls_works(target: Target) -> bool:
    """Whether imap2api's own connection gets STARTTLS with a verified certificate."""
    from imap2api.sync.connection import ImapAccount, connected

    account = ImapAccount(target.host, target.port, target.user, target.password, tls_mode="starttls")
    with connected(account) as client:
        return isinstance(client.socket(), ssl.SSLSocket)


def _command_table(proxy) -> list[tuple[str, int, float]]:  # noqa: ANN001
    """Commands of the traced run by kind: (kind, count, seconds waiting for the answer)."""
    from bench.resync import command_kind

    per_kind: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for command in proxy.commands:
        entry = per_kind[command_kind(command.text.decode(errors="replace"))]
        entry[0] += 1
        entry[1] += command.seconds or 0.0
    return sorted(
        ((kind, count, seconds) for kind, (count, seconds) in per_kind.items()), key=lambda r: -r[2]
    )


def say(text: str) -> None:
    """Progress, on stderr."""
    print(text, file=sys.stderr, flush=True)


def print_table(reports: list[Report], args: argparse.Namespace) -> None:
    """The results, one line per check, then the times."""
    lines = ["", f"{'server':<13}{'check':<16}{'result':<8}detail", "-" * 100]
    for report in reports:
        for name, ok, detail in report.rows:
            lines.append(f"{report.server:<13}{name:<16}{'PASS' if ok else 'FAIL':<8}{detail[:160]}")
    lines += [
        "",
        f"{'server':<13}{'messages':>9}{'full sync':>12}{'incremental':>13}   (changes: "
        + ", ".join(f"{v} {k}" for k, v in CHANGES.items())
        + ")",
        "-" * 60,
    ]
    for report in reports:
        full = f"{report.full_seconds:.2f}s" if report.full_seconds is not None else "-"
        inc = f"{report.incremental_seconds:.2f}s" if report.incremental_seconds is not None else "-"
        lines.append(f"{report.server:<13}{report.messages:>9}{full:>12}{inc:>13}")
    for report in reports:
        if report.commands:
            lines += ["", f"{report.server}: commands of the incremental sync (count, time to answer)"]
            lines += [f"  {kind:<50}{count:>5}{seconds:>10.4f}s" for kind, count, seconds in report.commands]
    passed = sum(ok for report in reports for _, ok, _ in report.rows)
    failed = sum(not ok for report in reports for _, ok, _ in report.rows)
    lines += ["", f"{passed} passed, {failed} failed"]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Check every chosen server; 1 if any check failed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.servers.check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--servers", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--messages", type=int, default=60, help="messages in INBOX (default 60)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--trace", action="store_true", help="sync through a timing relay, in clear text")
    args = parser.parse_args(argv)
    names = [name for name in args.servers.split(",") if name]
    if unknown := set(names) - set(TARGETS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if args.messages < 20:
        parser.error("--messages must be at least 20 (the change set takes 16 of INBOX)")

    from bench.sync import bench_environment

    with bench_environment(args.database, "servers") as dovecot:
        if dovecot is None:
            return 2
        from imap2api.config import settings

        # One CA file for all: Dovecot's throw-away certificate and setup.sh's.
        bundle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)  # noqa: SIM115
        with bundle:
            bundle.write(dovecot.ca_cert_path.read_text())
            if os.path.exists(CA_FILE):
                bundle.write(open(CA_FILE).read())  # noqa: SIM115, PTH123
        settings.imap_ca_file = bundle.name
        reports = []
        for name in names:
            target = TARGETS[name]
            if name == "dovecot":
                target = Target("dovecot", dovecot.port, user=dovecot.add_user(), host=dovecot.host)
            reports.append(check_server(target, args, bundle.name))
        os.unlink(bundle.name)
    print_table(reports, args)
    return 0 if all(ok for report in reports for _, ok, _ in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
