"""The pure parts of push: the watch plan, reading unsolicited responses, the backoff, the pusher's
debounce and per-server serialisation (with a recording sync function in place of IMAP)."""

from __future__ import annotations

import threading
import time

import pytest

from imap2api.errors import SyncFailed
from imap2api.sync.engine import LeaseBusy
from imap2api.sync.folders import RemoteFolder
from imap2api.sync.push import PushOutcome
from imap2api.watch.listener import backoff
from imap2api.watch.notices import Notice, canonical, read_responses, status_key
from imap2api.watch.plan import WatchMode, plan_watch
from imap2api.watch.pusher import Pusher

FOLDERS = [
    RemoteFolder("INBOX", "/", ""),
    RemoteFolder("Sent", "/", "\\Sent"),
    RemoteFolder("Drafts", "/", "\\Drafts"),
    RemoteFolder("Archive", "/", "\\Archive"),
    RemoteFolder("Projects", "/", ""),
]
IDLE_FOLDERS = ["\\Sent", "\\Archive", "\\Flagged", "\\Drafts"]


def test_notify_hears_every_folder_and_inbox_gets_an_idle_of_its_own() -> None:
    capabilities = ["IMAP4REV1", "IDLE", "NOTIFY"]
    alone = plan_watch(capabilities, FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=1)
    assert (alone.mode, alone.extra_idle, alone.polled) == (WatchMode.NOTIFY, (), ())
    assert alone.describe(30) == "NOTIFY"
    plan = plan_watch(capabilities, FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=3)
    assert (plan.mode, plan.extra_idle, plan.polled) == (WatchMode.NOTIFY, ("INBOX",), ())
    beside = plan_watch(
        capabilities, FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=4, idle_with_notify=True
    )
    assert (beside.mode, beside.extra_idle, beside.polled) == (
        WatchMode.NOTIFY,
        ("INBOX", "Sent", "Archive"),
        (),
    )
    assert beside.describe(30) == "NOTIFY; IDLE on INBOX, Sent, Archive"
    budget = plan_watch(
        capabilities, FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=3, idle_with_notify=True
    )
    assert budget.extra_idle == ("INBOX", "Sent")


def test_idle_takes_the_folders_that_matter_in_order_and_polls_the_rest() -> None:
    plan = plan_watch(["IDLE"], FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=3)
    assert plan.idle_folder == "INBOX"
    assert plan.extra_idle == ("Sent", "Archive")
    assert plan.polled == ("Drafts", "Projects")
    assert plan.describe(30) == "IDLE on INBOX; IDLE on Sent, Archive; STATUS every 30 s on 2 folders"


def test_idle_folders_may_be_names_and_the_connection_budget_holds() -> None:
    plan = plan_watch(["IDLE"], FOLDERS, idle_folders=["Projects", "\\sent"], max_connections=2)
    assert plan.extra_idle == ("Projects",)
    assert plan_watch(["IDLE"], FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=1).extra_idle == ()


def test_without_idle_or_without_inbox_everything_is_polled() -> None:
    assert (
        plan_watch(["NOTIFY"], FOLDERS, idle_folders=IDLE_FOLDERS, max_connections=3).mode == WatchMode.POLL
    )
    no_inbox = plan_watch(["IDLE"], FOLDERS[1:], idle_folders=IDLE_FOLDERS, max_connections=3)
    assert (no_inbox.mode, no_inbox.polled) == (WatchMode.POLL, ("Sent", "Drafts", "Archive", "Projects"))
    assert no_inbox.describe(1) == "STATUS polling; STATUS every 1 s on 4 folders"


def test_responses_on_the_selected_folder() -> None:
    for response in [(3, b"EXISTS"), (2, b"EXPUNGE"), (4, b"FETCH", (b"FLAGS", ())), (b"VANISHED", b"3:4")]:
        assert read_responses([response], selected="INBOX") == Notice(folders={"INBOX"})
    assert not read_responses([(b"OK", b"Still here"), (1, b"RECENT")], selected="INBOX")
    assert read_responses([(b"BYE", b"shutting down")], selected="INBOX").bye


def test_notify_responses_name_their_folder_in_modified_utf7() -> None:
    notice = read_responses(
        [(b"STATUS", b"&AMQ-rger", (b"MESSAGES", 1)), (b"STATUS", b"INBOX", (b"UIDNEXT", 5))], selected=None
    )
    assert notice.folders == {"Ärger", "INBOX"} and not notice.folder_list
    assert read_responses([(b"LIST", (b"\\NonExistent",), b"/", b"Old")], selected=None).folder_list
    assert not read_responses([(5, b"EXISTS")], selected=None)  # nothing selected: no folder to name


def test_canonical_names_and_status_keys() -> None:
    assert canonical("inbox", ["INBOX", "Sent"]) == "INBOX"
    assert canonical("Sent", ["INBOX", "Sent"]) == "Sent"
    assert canonical("sent", ["INBOX", "Sent"]) is None  # only INBOX is case-insensitive
    before = status_key({b"UIDNEXT": 5, b"MESSAGES": 4, b"UIDVALIDITY": 1})
    assert status_key({b"UIDNEXT": 5, b"MESSAGES": 4, b"UIDVALIDITY": 1, b"UNSEEN": None}) == before
    assert status_key({b"UIDNEXT": 5, b"MESSAGES": 3, b"UIDVALIDITY": 1}) != before


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    for attempt in range(40):
        step = min(300.0, 2.0**attempt)
        assert step / 2 <= backoff(attempt, cap=300) <= step
    assert len({round(backoff(3, cap=300), 6) for _ in range(20)}) > 1  # jittered


class Recorder:
    """A sync function recording its calls; blocks while ``gate`` is clear; fails as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, frozenset[str] | None]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.failures: list[Exception] = []
        self.running: set[int] = set()
        self.overlapped = False
        self._lock = threading.Lock()

    def __call__(self, server_id: int, folders: frozenset[str] | None) -> PushOutcome:
        with self._lock:
            self.overlapped |= server_id in self.running
            self.running.add(server_id)
            self.calls.append((server_id, folders))
        try:
            self.gate.wait(10)
            if self.failures:
                raise self.failures.pop(0)
            return PushOutcome()
        finally:
            with self._lock:
                self.running.discard(server_id)


def settle(pusher: Pusher) -> None:
    """Wait until the pusher has nothing pending or running."""
    ends = time.monotonic() + 10
    while not pusher.idle():
        assert time.monotonic() < ends, "the pusher never settled"
        time.sleep(0.01)


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


def test_notices_within_the_debounce_make_one_sync(recorder: Recorder) -> None:
    pusher = Pusher(threads=2, debounce_seconds=0.2, sync=recorder)
    try:
        pusher.notice(1, {"INBOX"})
        pusher.notice(1, {"Archive"})
        pusher.notice(2, None)
        pusher.notice(2, {"Sent"})  # "everything" absorbs a folder
        settle(pusher)
    finally:
        pusher.stop()
    assert sorted(recorder.calls, key=lambda call: call[0]) == [
        (1, frozenset({"INBOX", "Archive"})),
        (2, None),
    ]


def test_notices_during_a_sync_make_the_next_one_never_a_concurrent_one(recorder: Recorder) -> None:
    pusher = Pusher(threads=4, debounce_seconds=0, sync=recorder)
    try:
        recorder.gate.clear()
        pusher.notice(1, {"INBOX"})
        while not recorder.running:
            time.sleep(0.01)
        pusher.notice(1, {"Sent"})
        pusher.notice(1, {"Drafts"})
        time.sleep(0.1)
        recorder.gate.set()
        settle(pusher)
    finally:
        pusher.stop()
    assert recorder.calls == [(1, frozenset({"INBOX"})), (1, frozenset({"Sent", "Drafts"}))]
    assert not recorder.overlapped


def test_a_busy_or_failed_sync_is_tried_again(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imap2api.watch.pusher.BUSY_RETRY_SECONDS", 0.05)
    monkeypatch.setattr("imap2api.watch.pusher.FAILED_RETRY_SECONDS", 0.05)
    recorder.failures = [LeaseBusy("a run holds it"), SyncFailed("down", code="IMAP_CONNECTION_FAILED")]
    pusher = Pusher(threads=1, debounce_seconds=0, sync=recorder)
    try:
        pusher.notice(7, {"INBOX"})
        ends = time.monotonic() + 10
        while len(recorder.calls) < 3:
            assert time.monotonic() < ends
            time.sleep(0.01)
        settle(pusher)
    finally:
        pusher.stop()
    assert recorder.calls == [(7, frozenset({"INBOX"}))] * 3
