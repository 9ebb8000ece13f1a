"""How a held message (gone from its folder) is recognised in its new one: EMAILID where the server has
OBJECTID (RFC 8474), else the fingerprint (Message-ID, size, INTERNALDATE, subject, sender)."""

from __future__ import annotations

from datetime import UTC, datetime

from imap2api.sync.batch import object_id
from imap2api.sync.moves import Moves
from imap2api.sync.write import copied_uids

WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def held_row(email_id: int, *, object_id: str = "", message_id: str = "<same@example.com>") -> tuple:
    """A row as crud_mirror.vanished_* gives it."""
    return (email_id, "INBOX", message_id, 1200, WHEN, "Same", "a@example.com", f"t{email_id}", object_id)


def new_row(*, object_id: str = "", message_id: str = "<same@example.com>") -> dict:
    """A fetched row as batch.email_row gives it (the fields matching reads)."""
    return {
        "folder": "Archive",
        "uidvalidity": 7,
        "uid": 1,
        "message_id": message_id,
        "size": 1200,
        "internal_date": WHEN,
        "subject": "Same",
        "sender": "a@example.com",
        "object_id": object_id,
    }


def test_emailid_tells_identical_messages_apart() -> None:
    moves = Moves()
    moves.hold(1, [held_row(10, object_id="Maaa"), held_row(11, object_id="Mbbb")])
    assert moves.take(new_row(object_id="Mbbb")).email_id == 11  # not the first with that fingerprint
    assert moves.take(new_row(object_id="Mccc")) is None  # an EMAILID nobody held is a new message
    assert moves.take(new_row(object_id="Maaa")).email_id == 10
    assert moves.remaining() == []


def test_without_objectid_the_fingerprint_decides() -> None:
    moves = Moves()
    moves.hold(1, [held_row(10), held_row(11, message_id="<other@example.com>")])
    assert moves.take(new_row(message_id="<other@example.com>")).email_id == 11
    assert moves.take(new_row()).email_id == 10
    assert moves.take(new_row()) is None


def test_take_from_elsewhere_never_matches_its_own_folder() -> None:
    moves = Moves()
    moves.hold(1, [held_row(10, object_id="Maaa")])
    assert moves.take_from_elsewhere(None, "Maaa", folder_id=1) is None
    assert moves.take_from_elsewhere(None, "Maaa", folder_id=2).email_id == 10


def test_emailid_as_fetch_answers_it() -> None:
    assert object_id((b"M6d99ac3275bb4e",)) == "M6d99ac3275bb4e"
    assert object_id(b"M1") == "M1"
    assert object_id(None) == "" and object_id(()) == ""
    assert object_id((b"bad id",)) == "" and object_id((b"x" * 256,)) == ""  # not an RFC 8474 objectid


def test_where_imap2api_moved_a_message_beats_every_other_match() -> None:
    moves = Moves()
    moves.hold(1, [held_row(10, object_id="Maaa"), held_row(11, object_id="Maaa")])  # two identical copies
    moves.placed[("Archive", 7, 51)] = 11  # COPYUID: 11's message is UID 51 there
    row = {**new_row(object_id="Maaa"), "folder": "Archive", "uidvalidity": 7, "uid": 51}
    assert moves.take(row).email_id == 11
    assert moves.take({**row, "uid": 50}).email_id == 10


def test_copyuid_answers() -> None:
    assert copied_uids([b"[COPYUID 38505 304,319:320 3956:3958] Done"]) == (
        38505,
        {304: 3956, 319: 3957, 320: 3958},
    )
    assert copied_uids(["Move completed.", b"[COPYUID 9 5 12] Moved UIDs."]) == (9, {5: 12})
    assert copied_uids([b"Copy completed."]) is None  # no UIDPLUS
    assert copied_uids([b"[COPYUID 9 1:3 5:6] x"]) is None  # sets of different lengths: not believed
    assert copied_uids([b"[COPYUID 9 1:4000000000 1:4000000000] x"]) is None
