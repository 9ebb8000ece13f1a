"""Re-sync benchmark: one incremental sync after a typical change set, per server profile, per IMAP command.

Run ``python -m bench.resync [--messages N] [--database sqlite|postgresql]``. One throw-away Dovecot
holds a mailbox of N realistic messages (bench.sync's corpus). Each profile reaches it through a
loopback relay (tests/support/imap_proxy.py) that times every command and, for the lesser profiles,
removes capabilities from what the server announces, as a server without them would:

- ``qresync``: everything Dovecot offers (QRESYNC, CONDSTORE, ...);
- ``condstore``: no QRESYNC (flag changes by CHANGEDSINCE, expunges by listing every UID);
- ``plain``: neither (a FLAGS sweep of every message, as on Courier);
- ``direct``: everything, without the relay (Dovecot on loopback ACKs at once; no command table).

Per profile: a fresh server row, a full sync, a no-change re-sync, then the change set of the
report behind it (7 new, 4 expunged, 4 moved to Archive, 8 flag changes in INBOX) and the timed
re-sync, whose mirror is checked against the server message by message. Printed: wall time, the
ratio to the no-change re-sync of the same profile, and the commands with their count and time.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
from collections import defaultdict

from bench.sync import Corpus, fill_mailbox, timed_sync, warm_up

PROFILES = {"qresync": (), "condstore": (b"QRESYNC",), "plain": (b"QRESYNC", b"CONDSTORE"), "direct": ()}
CHANGES = {"new": 7, "expunged": 4, "moved": 4, "flagged": 8}
MB = 1_000_000


def new_server_row(host: str, port: int, mail_user: str) -> int:
    """A fresh imap2api user and server row on ``host:port``, clear text (the relay sees the bytes)."""
    from imap2api.crud import servers as crud_servers
    from imap2api.crud import users as crud_users
    from imap2api.db import session_scope
    from imap2api.validation import validate_server

    data = validate_server(
        {
            "name": f"resync of {mail_user}",
            "host": host,
            "port": port,
            "username": mail_user,
            "password": "secret",
            "tls_mode": "none",
        }
    )
    with session_scope() as session:
        owner = crud_users.create_user(
            session, username="resync_" + secrets.token_hex(4), password=secrets.token_hex(8)
        )
        assert owner.id is not None
        server_id = crud_servers.create_server(session, owner_id=owner.id, data=data).id
        assert server_id is not None
        return server_id


def apply_changes(dovecot, user: str, corpus: Corpus, rng: random.Random) -> None:  # noqa: ANN001
    """The report's change set, made as a mail client and a delivery agent would."""
    with dovecot.client(user) as client:
        client.select_folder("INBOX")
        unflagged = sorted(client.search(["UNFLAGGED"]))
        chosen = rng.sample(unflagged, CHANGES["expunged"] + CHANGES["moved"] + CHANGES["flagged"])
        expunged = chosen[: CHANGES["expunged"]]
        moved = chosen[CHANGES["expunged"] : CHANGES["expunged"] + CHANGES["moved"]]
        flagged = chosen[CHANGES["expunged"] + CHANGES["moved"] :]
        client.add_flags(flagged, [b"\\Flagged"])
        client.move(moved, "Archive")
        client.delete_messages(expunged)
        client.expunge()
    for _ in range(CHANGES["new"]):
        raw, flags = corpus.message("INBOX")
        dovecot.add_message(user, "INBOX", raw, flags=flags)


def mirror_matches(dovecot, user: str, server_id: int) -> bool:  # noqa: ANN001
    """Whether the mirror holds exactly the server's messages and flags, folder by folder."""
    from sqlmodel import select

    from imap2api.db import session_scope
    from imap2api.models import Email
    from imap2api.sync.imap import flags_text

    with session_scope() as session:
        statement = select(Email.folder, Email.uid, Email.flags).where(Email.imap_server_id == server_id)
        rows = session.exec(statement)
        mirrored = {(folder, uid): flags for folder, uid, flags in rows}
    remote = {}
    with dovecot.client(user) as client:
        for folder in sorted({folder for folder, _ in mirrored}):
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            for uid, data in (client.fetch(uids, ["FLAGS"]) if uids else {}).items():
                remote[(folder, uid)] = flags_text(data[b"FLAGS"])
    return mirrored == remote


def command_kind(text: str) -> str:
    """A command's kind for the table: verb, and for FETCH what it asks for."""
    words = text.split(" ")
    if words[0].upper() == "UID" and len(words) > 1:
        verb = "UID " + words[1].upper()
        if verb == "UID FETCH":
            wanted = text.split("(", 1)[1].split(")", 1)[0] if "(" in text else ""
            everything = " 1:*" if " 1:* " in text else ""
            changed = " CHANGEDSINCE" if "CHANGEDSINCE" in text.upper() else ""
            return f"{verb}{everything} ({wanted.split(' ')[0]}{' ...' if ' ' in wanted else ''}){changed}"
        if verb == "UID SEARCH":
            return verb + (" ALL" if text.upper().endswith(" ALL") else " (a UID range)")
        return verb
    verb = words[0].upper()
    if verb in ("EXAMINE", "SELECT") and "(QRESYNC" in text.upper():
        return verb + " (QRESYNC ...)"
    return verb


def measure(profile: str, dovecot, user: str, corpus: Corpus, rng: random.Random) -> dict:  # noqa: ANN001
    """Full sync, no-change re-sync and the timed re-sync after the change set, through one relay."""
    from tests.support.imap_proxy import ImapProxy, without_capabilities

    hidden = PROFILES[profile]
    rewrite = without_capabilities(*hidden) if hidden else None
    with ImapProxy(dovecot.host, dovecot.port, rewrite=rewrite) as proxy:
        port = dovecot.port if profile == "direct" else proxy.port
        server_id = new_server_row(proxy.host, port, user)
        full, full_seconds, _, _ = timed_sync(server_id)
        assert full.status == "success", full.error
        same, same_seconds, _, _ = timed_sync(server_id)
        assert same.status == "success", same.error
        apply_changes(dovecot, user, corpus, rng)
        proxy.clear()
        bytes_before = proxy.server_bytes
        run, seconds, cpu, _ = timed_sync(server_id)
        assert run.status == "success", run.error
        commands = list(proxy.commands)
        server_bytes = proxy.server_bytes - bytes_before
    exact = mirror_matches(dovecot, user, server_id)
    per_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for command in commands:
        entry = per_kind[command_kind(command.text.decode(errors="replace"))]
        entry[0] += 1
        entry[1] += command.seconds or 0.0
    return {
        "profile": profile,
        "full": full_seconds,
        "same": same_seconds,
        "seconds": seconds,
        "cpu": cpu,
        "run": run,
        "exact": exact,
        "commands": len(commands),
        "server_bytes": server_bytes,
        "imap_seconds": sum(command.seconds or 0.0 for command in commands),
        "per_kind": per_kind,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every profile and print the table; 0 whatever the numbers say."""
    parser = argparse.ArgumentParser(prog="python -m bench.resync", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="N, the mailbox size (default 10000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=42, help="corpus seed (default 42)")
    parser.add_argument(
        "--profiles", default=",".join(PROFILES), help="comma-separated subset of " + ", ".join(PROFILES)
    )
    args = parser.parse_args(argv)
    profiles = [name for name in args.profiles.split(",") if name]
    if unknown := set(profiles) - set(PROFILES):
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    if args.messages < 100:
        parser.error("--messages must be at least 100")

    from bench.sync import bench_environment

    with bench_environment(args.database, "resync") as dovecot:
        if dovecot is None:
            return 2
        _run(args, profiles, dovecot)
    return 0


def _run(args: argparse.Namespace, profiles: list[str], dovecot) -> None:  # noqa: ANN001
    """Fill the mailbox, measure each profile, print the summary."""
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731 - progress, not results
    load_before = os.getloadavg()[0]
    say(f"filling a mailbox with {args.messages} messages...")
    corpus = Corpus(seed=args.seed)
    user = dovecot.add_user()
    plan, total_bytes = fill_mailbox(dovecot, user, args.messages, corpus)
    warm_up(dovecot, user)
    rng = random.Random(args.seed)
    results = []
    for profile in profiles:
        say(f"{profile}: full sync, no-change re-sync, changes, re-sync...")
        started = time.perf_counter()
        results.append(measure(profile, dovecot, user, corpus, rng))
        say(f"  {time.perf_counter() - started:.1f} s")
    changes = ", ".join(f"{count} {name}" for name, count in CHANGES.items())
    lines = [
        "",
        f"imap2api re-sync benchmark: N={args.messages} ({', '.join(f'{k} {v}' for k, v in plan.items())}), "
        f"{total_bytes / MB:.1f} MB, {args.database}; changes: {changes}",
        f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs",
        "",
        f"{'profile':<11}{'re-sync':>10}{'no-change':>11}{'ratio':>8}{'IMAP wait':>11}{'commands':>10}"
        f"{'server KB':>11}  new/updated/deleted  mirror",
        "-" * 100,
    ]
    for result in results:
        run = result["run"]
        relayed = result["profile"] != "direct"
        wait = f"{result['imap_seconds']:>10.3f}s" if relayed else f"{'-':>11}"
        commands = f"{result['commands']:>10}{result['server_bytes'] / 1000:>11.1f}" if relayed else " " * 21
        counts = f"{run.messages_new}/{run.messages_updated}/{run.messages_deleted}"
        lines.append(
            f"{result['profile']:<11}{result['seconds']:>9.3f}s{result['same']:>10.3f}s"
            f"{result['seconds'] / result['same']:>8.1f}{wait}{commands}  {counts:<21}"
            f"{'exact' if result['exact'] else 'WRONG'}"
        )
    by_name = {result["profile"]: result for result in results}
    if "qresync" in by_name:
        for other in ("condstore", "plain"):
            if other in by_name:
                ratio = by_name["qresync"]["seconds"] / by_name[other]["seconds"]
                lines.append(f"re-sync time qresync / {other}: {ratio:.2f}")
    lines.append(
        "(ratio: re-sync after the changes / no-change re-sync of the same profile; IMAP wait: "
        "time between sending each command and its tagged answer)"
    )
    for result in results:
        if result["profile"] == "direct":
            continue
        lines += ["", f"{result['profile']}: commands of the re-sync"]
        for kind, (count, seconds) in sorted(result["per_kind"].items(), key=lambda item: -item[1][1]):
            lines.append(f"  {kind:<48}{count:>5}{seconds:>10.4f}s")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
