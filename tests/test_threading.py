"""The pure threading rule (imap2api.mail.threading), without a database or a server."""

from __future__ import annotations

import itertools

from imap2api.mail.threading import group_threads


def numbered() -> object:
    counter = itertools.count(1)
    return lambda: f"new{next(counter)}"


def test_messages_linked_by_any_id_share_a_thread_and_strangers_do_not() -> None:
    grouping = group_threads(
        [["<a>"], ["<b>", "<a>"], ["<c>", "<b>", "<a>"], ["<z>"]], known={}, new_id=numbered()
    )
    first, reply, second_reply, stranger = grouping.thread_ids
    assert first == reply == second_reply != stranger
    assert grouping.merged == {}
    assert grouping.new_keys == {"<a>": first, "<b>": first, "<c>": first, "<z>": stranger}


def test_siblings_join_through_a_missing_parent() -> None:
    grouping = group_threads([["<x>", "<gone>"], ["<y>", "<gone>"]], known={}, new_id=numbered())
    assert grouping.thread_ids[0] == grouping.thread_ids[1]


def test_a_known_thread_is_joined_and_two_known_threads_merge_into_the_smaller_id() -> None:
    known = {"<old1>": "thr_b", "<old2>": "thr_a"}
    joined = group_threads([["<r>", "<old1>"]], known=known, new_id=numbered())
    assert joined.thread_ids == ["thr_b"] and joined.merged == {} and joined.new_keys == {"<r>": "thr_b"}

    bridged = group_threads([["<bridge>", "<old1>", "<old2>"]], known=known, new_id=numbered())
    assert bridged.thread_ids == ["thr_a"]  # a known id wins over a new one; between two, the smaller
    assert bridged.merged == {"thr_b": "thr_a"}
    assert bridged.new_keys == {"<bridge>": "thr_a"}  # known keys are not recorded again


def test_a_message_with_no_ids_gets_a_thread_of_its_own() -> None:
    grouping = group_threads([[], []], known={}, new_id=numbered())
    assert grouping.thread_ids == ["new1", "new2"] and grouping.new_keys == {}
