"""Acting on mail: flags, moves and deletes, applied on the IMAP server before the answer.

Each server's writes take its sync lease (waiting up to ``IMAP2API_WRITE_WAIT_SECONDS`` for a sync
under way), so a write and a sync never interleave: no lost update. On the server the work is one
command per folder and action, on the UIDs still there. The mirror is then brought up to date by
a sync of the folders touched, over the same connection: what it stores is what the server now
says, the message keeps its id across a move (sync/moves.py), and the events (``email.updated``,
``email.moved``, ``email.deleted``) are written once, by that sync, so no later sync repeats them.

A message gone from the server answers ``not_found`` (and the sync removes it from the mirror);
the IMAP server down or refusing answers its code, with the mirror unchanged.
"""

from __future__ import annotations

import dataclasses
import imaplib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlmodel import col, select

from imap2api.config import settings
from imap2api.crud import emails as crud_emails
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.errors import Imap2ApiError, NotFound, ServerBusy, SyncFailed, ValidationFailed
from imap2api.models import ImapServer, utcnow
from imap2api.services.principal import Principal
from imap2api.sync.connection import connected
from imap2api.sync.engine import account_of, holder_name, mirror_server
from imap2api.sync.folders import RemoteFolder, list_remote_folders
from imap2api.sync.imap import discard_untagged
from imap2api.sync.progress import RunState
from imap2api.sync.push import give_back, relay_events, runless_state
from imap2api.sync.run_timeout import RunTimeout
from imap2api.sync.write import (
    FlagChange,
    ReadOnlyFolder,
    UnsafeExpunge,
    WriteRefused,
    append_message,
    expunge,
    move,
    open_for_writing,
    present,
    sent_folder,
    store_flags,
    trash_folder,
)

log = logging.getLogger("imap2api.actions")

MAX_BATCH = 1000
# What a connection lost mid-write raises (imaplib, imapclient, the socket, TLS).
LOST = (imaplib.IMAP4.abort, imaplib.IMAP4.error, IMAPClientError, OSError)
MAX_FLAGS = 20
SYSTEM_FLAGS = {"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"}
# RFC 3501 atom characters: no ( ) { space, controls, % * " \ ]
_KEYWORD = re.compile(r"^[^(){ \x00-\x1f\x7f%*\"\\\]]{1,100}$")
MODIFY, MOVE, DELETE = "modify", "move", "delete"


@dataclass(frozen=True)
class Action:
    """What to do to some emails: change flags, move to ``folder``, or delete (``permanent``: expunge)."""

    kind: str
    flags: FlagChange = field(default_factory=FlagChange)
    folder: str = ""
    permanent: bool = False


@dataclass(frozen=True)
class Outcome:
    """What became of one email: ``ok``, ``not_found`` or ``failed`` (with the error's code and text)."""

    id: int
    status: str
    code: str = ""
    detail: str = ""
    error: Imap2ApiError | None = field(default=None, compare=False, repr=False)


def flag_change(
    *,
    seen: bool | None = None,
    flagged: bool | None = None,
    answered: bool | None = None,
    flags_add: Sequence[str] = (),
    flags_remove: Sequence[str] = (),
) -> FlagChange:
    """The flag change a request asks for, validated (field errors under the REST names)."""
    errors: dict[str, list[str]] = {}
    for name, flags in (("flags_add", flags_add), ("flags_remove", flags_remove)):
        if len(flags) > MAX_FLAGS:
            errors[name] = [f"At most {MAX_FLAGS} flags."]
            continue
        bad = [flag for flag in flags if not _valid_flag(flag)]
        if bad:
            errors[name] = [f"Not an IMAP flag: {bad[0][:100]!r}."]
    if errors:
        raise ValidationFailed(errors)
    add, remove = list(flags_add), list(flags_remove)
    for flag, wanted in (("\\Seen", seen), ("\\Flagged", flagged), ("\\Answered", answered)):
        if wanted is True:
            add.append(flag)
        elif wanted is False:
            remove.append(flag)
    clash = {flag.lower() for flag in add} & {flag.lower() for flag in remove}
    if clash:
        raise ValidationFailed({"non_field_errors": [f"{sorted(clash)[0]} is both added and removed."]})
    if not add and not remove:
        raise ValidationFailed({"non_field_errors": ["Nothing to change."]})
    return FlagChange(add=tuple(dict.fromkeys(add)), remove=tuple(dict.fromkeys(remove)))


def _valid_flag(flag: str) -> bool:
    """A system flag (``\\Seen``...; never ``\\Recent``) or a keyword atom (``$Label1``, ``Work``)."""
    if flag.startswith("\\"):
        return flag.lower() in SYSTEM_FLAGS
    return bool(_KEYWORD.match(flag))


def act(actor: Principal, email_ids: Sequence[int], action: Action) -> list[Outcome]:
    """Apply ``action`` to the principal's emails, server by server; an Outcome per id, in order."""
    ids = list(dict.fromkeys(email_ids))
    if not ids:
        raise ValidationFailed({"ids": ["This list may not be empty."]})
    if len(ids) > MAX_BATCH:
        raise ValidationFailed({"ids": [f"Ensure this list has at most {MAX_BATCH} elements."]})
    with session_scope() as session:
        rows = crud_emails.places(session, owner_id=actor.owner_scope, email_ids=ids)
        servers = {
            server.id or 0: server
            for server in session.exec(
                select(ImapServer).where(col(ImapServer.id).in_({row[1] for row in rows}))
            ).all()
        }
    outcomes = {email_id: Outcome(email_id, "not_found", "NOT_FOUND", "Not found.") for email_id in ids}
    by_server: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
    for email_id, server_id, folder, uidvalidity, uid in rows:
        by_server[server_id].append((email_id, folder, uidvalidity, uid))
    for server_id, members in by_server.items():
        try:
            outcomes.update(_on_server(servers[server_id], members, action))
        except Imap2ApiError as exc:
            for email_id, *_ in members:
                outcomes[email_id] = Outcome(email_id, "failed", exc.code, exc.message, exc)
    return [outcomes[email_id] for email_id in ids]


def act_on_one(actor: Principal, email_id: int, action: Action) -> None:
    """``act`` on one email, raising what stopped it (NotFound, ValidationFailed, SyncFailed...)."""
    (outcome,) = act(actor, [email_id], action)
    if outcome.status == "not_found":
        raise NotFound()
    if outcome.error is not None:
        raise outcome.error


def _take_lease(server_id: int, holder: str) -> None:
    """The server's sync lease, waiting for a sync under way up to WRITE_WAIT_SECONDS."""
    ends = time.monotonic() + settings.write_wait_seconds
    while True:
        with session_scope() as session:
            if crud_runs.acquire_lease(
                session, server_id=server_id, holder=holder, seconds=settings.sync_lease_seconds
            ):
                return
        if time.monotonic() >= ends:
            raise ServerBusy(
                "a sync of this IMAP server is under way and did not end in time; try again in a moment"
            )
        time.sleep(0.1)


def _on_server(
    server: ImapServer, members: list[tuple[int, str, int, int]], action: Action
) -> dict[int, Outcome]:
    """Apply the action to one server's emails (id, folder, uidvalidity, uid); their Outcomes."""
    with _writing(server, "during the write") as (client, state, bound):
        remote = list_remote_folders(client)
        destination = _destination(remote, action)
        outcomes, touched = _apply(client, members, action, destination, state)
        discard_untagged(client)
        # The mirror follows the server: the sync of the touched folders writes rows and events.
        mirror_server(server, state, bound, only=frozenset(touched), client=client)
    return outcomes


@contextmanager
def _writing(server: ImapServer, when: str) -> Iterator[tuple[IMAPClient, RunState, RunTimeout]]:
    """A write's setting: the server's sync lease, a connection within the run's time bound, and the
    state its sync records into; the events it wrote are relayed once the lease is given back."""
    server_id = server.id or 0
    holder = holder_name()
    _take_lease(server_id, holder)
    state = runless_state(server, holder)
    try:
        with RunTimeout(settings.sync_run_timeout_seconds) as bound:
            timeout = bound.imap_timeout(settings.imap_timeout_seconds)
            with connected(account_of(server), timeout=timeout) as client, bound.watching(client):
                yield client, state, bound
    except LOST as exc:
        # What was done before stays on the server; the next sync (or push) mirrors it.
        raise SyncFailed(
            f"the IMAP connection was lost {when}: {exc}"[:300], code="IMAP_CONNECTION_LOST"
        ) from exc
    finally:
        give_back(server_id, holder)
    if state.events:
        relay_events()


def _destination(remote: list[RemoteFolder], action: Action) -> RemoteFolder | None:
    """The folder a move or delete goes to (None: a delete expunges), checked to exist."""
    if action.kind == MOVE:
        found = next((folder for folder in remote if folder.name == action.folder), None)
        if found is None:
            raise ValidationFailed({"folder": [f"No folder {action.folder[:200]!r} on this IMAP server."]})
        return found
    if action.kind == DELETE and not action.permanent:
        trash = trash_folder(remote)
        if trash is None:
            raise ValidationFailed(
                {
                    "permanent": [
                        "This IMAP server has no Trash folder: delete with permanent=true to expunge."
                    ]
                }
            )
        return trash
    return None


def _apply_in_folder(
    client: IMAPClient,
    folder: str,
    uidvalidity: int,
    emails: list[tuple[int, int]],
    action: Action,
    destination: RemoteFolder | None,
    state: RunState,
) -> dict[int, Outcome]:
    """The action on one folder's emails (id, UID): one command on the UIDs still there."""
    gone = Outcome(0, "not_found", "NOT_FOUND", "Not found.")
    if not open_for_writing(client, folder, uidvalidity):
        return {email_id: dataclasses.replace(gone, id=email_id) for email_id, _ in emails}
    here = present(client, [uid for _, uid in emails])
    outcomes = {
        email_id: Outcome(email_id, "ok") if uid in here else dataclasses.replace(gone, id=email_id)
        for email_id, uid in emails
    }
    uids = sorted(here)
    if not uids:
        return outcomes
    if action.kind == MODIFY:
        store_flags(client, uids, action.flags)
    elif destination is not None and destination.name != folder:
        copied = move(client, uids, destination.name)
        if copied is not None:
            validity, new_uids = copied
            for email_id, uid in emails:
                if uid in new_uids:
                    state.moves.placed[(destination.name, validity, new_uids[uid])] = email_id
    elif action.kind == DELETE:
        expunge(client, uids)  # permanent, or in the Trash already
    # a move to the folder it is in: nothing to do
    return outcomes


def _apply(
    client: IMAPClient,
    members: list[tuple[int, str, int, int]],
    action: Action,
    destination: RemoteFolder | None,
    state: RunState,
) -> tuple[dict[int, Outcome], set[str]]:
    """One IMAP command per folder; the Outcomes and the folders whose mirror must follow.

    Where the server answers a move with COPYUID, the sync that follows is told where each email
    went (``state.moves.placed``): the id stays with the very message, identical copies or not.
    """
    outcomes: dict[int, Outcome] = {}
    touched: set[str] = set()
    groups: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for email_id, folder, uidvalidity, uid in members:
        groups[(folder, uidvalidity)].append((email_id, uid))
    for (folder, uidvalidity), emails in groups.items():
        touched.add(folder)  # a folder with a message gone is reconciled too
        try:
            outcomes.update(_apply_in_folder(client, folder, uidvalidity, emails, action, destination, state))
        except (ReadOnlyFolder, UnsafeExpunge, WriteRefused) as exc:
            # This folder's emails fail; the folders done before stay done, and are mirrored.
            outcomes.update(
                {email_id: Outcome(email_id, "failed", exc.code, exc.message, exc) for email_id, _ in emails}
            )
            continue
        if action.kind != MODIFY and destination is not None:
            touched.add(destination.name)
    return outcomes, touched


class NoSentFolder(Imap2ApiError):
    """Raised when the server has no Sent folder (no \\Sent special-use, no usual name) to file into."""

    code = "NO_SENT_FOLDER"


def file_sent(server_id: int, raw: bytes) -> str:
    """APPEND a sent message to the server's Sent folder with ``\\Seen``, then sync that folder; its name.

    Under the server's sync lease, as every write: the copy is mirrored once, by that sync (it is
    the sender's own mail: no email.received; the outbox row learns the copy's id there,
    imap2api.sync.batch and ``crud.outbox.link_copies``).
    """
    with session_scope() as session:
        server = session.get(ImapServer, server_id)
        if server is None:
            raise NotFound()
    with _writing(server, "while filing the message") as (client, state, bound):
        folder = sent_folder(list_remote_folders(client))
        if folder is None:
            raise NoSentFolder("this IMAP server has no Sent folder to file the sent message in")
        append_message(client, folder.name, raw, flags=["\\Seen"], when=utcnow())
        discard_untagged(client)
        mirror_server(server, state, bound, only=frozenset({folder.name}), client=client)
    return folder.name
