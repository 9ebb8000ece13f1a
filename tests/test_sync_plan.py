"""The sync's pure decisions (imap2api.sync.plan): no server, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imap2api.sync import examine, plan
from imap2api.sync.imap import flags_text
from imap2api.sync.plan import Changes, FlagSource, FolderStatus, KnownState, StoredFolder

LIMITS = {"max_count": 3, "max_bytes": 100, "max_message_bytes": 60}


def batched(uids: list[int], sizes: dict[int, int], **limits: int) -> list[list[tuple[int, int]]]:
    return list(plan.batches(uids, sizes, **{**LIMITS, **limits}))


# ------------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------------


def test_no_uids_no_batches() -> None:
    assert batched([], {}) == []
    assert batched([1, 2], {}) == []  # all expunged since they were listed


def test_batches_are_cut_by_count_exactly_at_the_limit() -> None:
    uids = list(range(1, 7))
    result = batched(uids, dict.fromkeys(uids, 1))
    assert result == [[(1, 1), (2, 1), (3, 1)], [(4, 1), (5, 1), (6, 1)]]
    assert batched(uids[:3], dict.fromkeys(uids, 1)) == [[(1, 1), (2, 1), (3, 1)]]
    assert [len(b) for b in batched(list(range(1, 8)), dict.fromkeys(range(1, 8), 1))] == [3, 3, 1]


def test_batches_are_cut_by_bytes_with_the_boundary_inclusive() -> None:
    # 50 + 50 == 100 fits exactly; one more byte does not.
    assert batched([1, 2], {1: 50, 2: 50}) == [[(1, 50), (2, 50)]]
    assert batched([1, 2], {1: 50, 2: 51}) == [[(1, 50)], [(2, 51)]]


def test_one_huge_message_gets_a_batch_of_its_own() -> None:
    result = batched([1, 2, 3], {1: 10, 2: 10_000, 3: 100})
    assert result == [[(1, 10)], [(2, 10_000)], [(3, 100)]]
    # Only its first max_message_bytes are fetched, so that is what it weighs afterwards.
    assert batched([1, 2], {1: 10_000, 2: 40}) == [[(1, 10_000), (2, 40)]]
    assert batched([7], {7: 10**9}) == [[(7, 10**9)]]  # never an empty batch, never dropped


def test_a_message_counts_only_for_what_is_fetched_of_it() -> None:
    # A 90-byte message counts for 60 (max_message_bytes), but the check uses the full size of
    # the message being added: 60 + 40 == 100 fits, and 90 alone would not fit after 20.
    assert batched([1, 2], {1: 90, 2: 40}) == [[(1, 90), (2, 40)]]
    assert batched([1, 2], {1: 20, 2: 90}) == [[(1, 20)], [(2, 90)]]


def test_batches_keep_order_and_skip_expunged_uids() -> None:
    assert batched([5, 3, 9, 4], {5: 1, 9: 1, 4: 1}) == [[(5, 1), (9, 1), (4, 1)]]


def test_batches_are_lazy() -> None:
    batches = plan.batches(iter([1, 2, 3, 4]), dict.fromkeys(range(1, 5), 1), **LIMITS)
    assert next(batches) == [(1, 1), (2, 1), (3, 1)]
    assert next(batches) == [(4, 1)]
    with pytest.raises(StopIteration):
        next(batches)


def test_chunks() -> None:
    assert list(plan.chunks([], 2)) == []
    assert list(plan.chunks([1, 2, 3, 4], 2)) == [[1, 2], [3, 4]]
    assert list(plan.chunks([1, 2, 3], 2)) == [[1, 2], [3]]
    assert [len(c) for c in plan.chunks(list(range(10_001)))] == [5000, 5000, 1]


# ------------------------------------------------------------------------------------------------
# The folder's status against the stored state
# ------------------------------------------------------------------------------------------------

STORED = StoredFolder(uidvalidity=7, uidnext=11, highestmodseq=40, message_count=10)
SAME = FolderStatus(uidvalidity=7, uidnext=11, exists=10, highestmodseq=40)


def test_unchanged_when_every_number_matches() -> None:
    assert plan.unchanged(STORED, SAME, "all")
    assert plan.unchanged(STORED, SAME, "last_n")


@pytest.mark.parametrize(
    "status",
    [
        FolderStatus(uidvalidity=8, uidnext=11, exists=10, highestmodseq=40),  # recreated
        FolderStatus(uidvalidity=7, uidnext=12, exists=11, highestmodseq=41),  # new mail
        FolderStatus(uidvalidity=7, uidnext=11, exists=9, highestmodseq=41),  # an expunge
        FolderStatus(uidvalidity=7, uidnext=11, exists=10, highestmodseq=41),  # a flag change
        FolderStatus(uidvalidity=7, uidnext=None, exists=10, highestmodseq=40),  # no UIDNEXT
        FolderStatus(uidvalidity=7, uidnext=11, exists=10, highestmodseq=None),  # no CONDSTORE
    ],
)
def test_changed_when_a_number_moved_or_is_missing(status: FolderStatus) -> None:
    assert not plan.unchanged(STORED, status, "all")


@pytest.mark.parametrize("limit_type", ["days", "weeks", "months"])
def test_time_limits_never_shortcut(limit_type: str) -> None:
    assert not plan.unchanged(STORED, SAME, limit_type)


def test_never_synced_folder_is_not_unchanged() -> None:
    never = StoredFolder(uidvalidity=None, uidnext=None, highestmodseq=None, message_count=None)
    assert not plan.unchanged(never, FolderStatus(uidvalidity=7, uidnext=1, exists=0, highestmodseq=1), "all")


def test_known_state_needs_all_three_numbers() -> None:
    assert plan.known_state(STORED) == KnownState(uidvalidity=7, highestmodseq=40, uidnext=11)
    assert plan.known_state(None) is None
    for missing in ("uidvalidity", "uidnext", "highestmodseq"):
        partial = StoredFolder(**{**STORED.__dict__, missing: None})
        assert plan.known_state(partial) is None
    # The message count is not part of it.
    assert plan.known_state(StoredFolder(**{**STORED.__dict__, "message_count": None})) is not None


def test_generation_and_arrival_boundary() -> None:
    assert plan.same_generation(STORED, SAME)
    assert not plan.same_generation(
        STORED, FolderStatus(uidvalidity=8, uidnext=1, exists=0, highestmodseq=None)
    )
    assert plan.arrival_boundary(11, 99) == 11  # the stored UIDNEXT wins
    assert plan.arrival_boundary(None, 99) == 100
    assert plan.arrival_boundary(None, None) == 1


def test_reported_changes_are_trusted_only_against_a_boundary_without_limits() -> None:
    changes = Changes()
    assert plan.trust_reported(changes, 11, "all")
    assert not plan.trust_reported(None, 11, "all")
    assert not plan.trust_reported(changes, None, "all")
    for limit_type in ("last_n", "days", "weeks", "months"):
        assert not plan.trust_reported(changes, 11, limit_type)


def test_next_uidnext() -> None:
    assert plan.next_uidnext(20, 15, 11) == 20  # the server's when it sends one
    assert plan.next_uidnext(None, 15, 11) == 15
    assert plan.next_uidnext(None, 5, 11) == 11  # never below the previous boundary
    assert plan.next_uidnext(None, 1, None) == 1


# ------------------------------------------------------------------------------------------------
# Which UIDs
# ------------------------------------------------------------------------------------------------


def test_listed_diff() -> None:
    diff = plan.listed_diff({1: "", 2: "", 5: ""}.keys(), {2, 5, 6, 9})
    assert diff.new == [6, 9]
    assert diff.gone == [1]
    assert diff.kept == {2, 5}
    assert diff.seen_below == 10


def test_listed_diff_edges() -> None:
    empty = plan.listed_diff([], set())
    assert (empty.new, empty.gone, empty.kept, empty.seen_below) == ([], [], set(), 1)
    everything_gone = plan.listed_diff([3, 1, 2], set())
    assert everything_gone.gone == [1, 2, 3]
    assert everything_gone.seen_below == 4  # the mirror's UIDs count too
    assert plan.listed_diff([], {4, 2}).new == [2, 4]


def test_arrival_range_and_arrivals() -> None:
    assert plan.arrival_range(15, 11) == (11, 14)
    assert plan.arrival_range(11, 11) is None
    assert plan.arrival_range(None, 11) is None  # no UIDNEXT: nothing counts as arrived here
    assert plan.arrival_range(9, 11) is None
    # A server may answer UIDs outside the range (``n:m`` means ``m:n``, ``*`` the highest UID).
    assert plan.arrivals([10, 14, 11, 15, 12], 11, 14, {12}) == [11, 14]


def test_consistent() -> None:
    assert plan.consistent(8, 2, 10)
    assert not plan.consistent(8, 1, 10)
    assert not plan.consistent(9, 2, 10)


def test_limit_windows() -> None:
    now = datetime(2024, 3, 31, 12, tzinfo=UTC)
    assert plan.since("days", 3, now) == now - timedelta(days=3)
    assert plan.since("weeks", 2, now) == now - timedelta(days=14)
    assert plan.since("months", 1, now) == now - timedelta(days=30)
    assert plan.since("days", 0, now) is None  # no value: no window
    assert plan.since("days", None, now) is None
    assert plan.since("all", 3, now) is None
    assert plan.since("last_n", 3, now) is None
    assert plan.within_limit([5, 1, 9, 3], "last_n", 2) == {5, 9}
    assert plan.within_limit([5, 1], "last_n", 9) == {1, 5}
    assert plan.within_limit([5, 1], "last_n", None) == {1, 5}
    assert plan.within_limit([5, 1], "all", 1) == {1, 5}


# ------------------------------------------------------------------------------------------------
# Flags
# ------------------------------------------------------------------------------------------------


def test_flags_text_sorts_and_drops_recent() -> None:
    assert flags_text((b"\\Seen", b"\\Answered")) == "\\Answered \\Seen"
    assert flags_text((b"\\Recent", b"\\Seen")) == "\\Seen"
    assert flags_text((b"\\RECENT", "\\recent")) == ""  # \Recent in any case
    assert flags_text(("$Label1", b"\\Flagged")) == "$Label1 \\Flagged"
    assert flags_text(()) == ""


def test_flag_diff_added_removed_unchanged() -> None:
    stored = {1: "", 2: "\\Seen", 3: "\\Flagged \\Seen", 4: "\\Seen"}
    current = {
        1: flags_text((b"\\Seen",)),  # added
        2: flags_text(()),  # removed
        3: flags_text((b"\\Seen", b"\\Flagged", b"\\Recent")),  # unchanged (order, \Recent)
        4: flags_text((b"\\Seen",)),  # unchanged
    }
    assert plan.flag_diff(current, stored, stored.keys()) == {1: "\\Seen", 2: ""}


def test_flag_diff_compares_exactly() -> None:
    # Servers answer system flags as they stored them; a change of case is a change of text.
    assert plan.flag_diff({1: "\\SEEN"}, {1: "\\Seen"}, {1}) == {1: "\\SEEN"}


def test_flag_diff_only_for_mirrored_messages_among_the_candidates() -> None:
    stored = {1: "", 2: ""}
    current = {1: "\\Seen", 2: "\\Seen", 3: "\\Seen"}  # 3 is new mail, not a flag change
    assert plan.flag_diff(current, stored, {1, 3}) == {1: "\\Seen"}


def test_reported_candidates() -> None:
    # Below the boundary, or at/above it but stored by a sync that broke off.
    assert plan.reported_candidates([3, 11, 12, 10], 11, {12}) == [3, 12, 10]
    assert plan.reported_candidates([], 11, set()) == []


@pytest.mark.parametrize(
    ("kept", "reported", "modseq", "previous", "expected"),
    [
        (False, True, 5, 4, FlagSource.NOTHING),  # nothing mirrored is kept
        (True, True, 5, 5, FlagSource.REPORTED),  # QRESYNC's report wins
        (True, False, 5, 5, FlagSource.NOTHING),  # HIGHESTMODSEQ has not moved
        (True, False, 6, 5, FlagSource.CHANGED_SINCE),
        (True, False, None, 5, FlagSource.SWEEP),  # no CONDSTORE now
        (True, False, 6, None, FlagSource.SWEEP),  # none stored (a new generation)
    ],
)
def test_flag_source(
    kept: bool, reported: bool, modseq: int | None, previous: int | None, expected: FlagSource
) -> None:
    source = plan.flag_source(kept=kept, reported=reported, highestmodseq=modseq, previous_modseq=previous)
    assert source is expected


def test_examine_reexports_the_status_types() -> None:
    assert examine.FolderStatus is FolderStatus
    assert examine.Changes is Changes
    assert examine.KnownState is KnownState
