"""The change feed (``GET /api/changes/``, GraphQL ``changes``) against the real Dovecot, on SQLite and
PostgreSQL: created, updated, destroyed since a cursor; pages inside one sequence; expired and
malformed cursors; owners apart; a first sync writes nothing per email beyond its rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, update
from sqlmodel import col, select

from imap2api.crud import changes as crud_changes
from imap2api.db import session_scope
from imap2api.models import ChangeCounter, Email, EmailTombstone, utcnow
from imap2api.workers.scheduler import prune_old_changes
from tests.conftest import Mirror
from tests.support.messages import make_message

# A message moved to another folder keeps its id (sync/moves.py): the feed lists it as updated.
# Were moves a delete plus an insert, it would be destroyed (old id) and created (new id).
MOVES_KEEP_IDS = True

GQL = """query($since: String, $limit: Int!) { changes(since: $since, limit: $limit) {
  cursor hasMore created updated destroyed } }"""


def feed(client, mirror: Mirror, since: str | None = None, **params) -> dict:
    """GET /api/changes/ as the mirror's owner; asserts a 200."""
    query = {**params, **({"since": since} if since is not None else {})}
    response = client.get("/api/changes/", params=query, headers=mirror.headers)
    assert response.status_code == 200, response.text
    return response.json()


def now(client, mirror: Mirror) -> str:
    """The current cursor, with empty lists."""
    body = feed(client, mirror)
    empty = {"has_more": False, "created": [], "updated": [], "destroyed": []}
    assert body == {"cursor": body["cursor"], **empty}
    return body["cursor"]


def by_subject(mirror: Mirror) -> dict[str, Email]:
    return {email.subject: email for email in mirror.emails()}


def uids(imap, folder: str, subject: str) -> list[int]:
    imap.select_folder(folder)
    return imap.search(["SUBJECT", subject])


def test_new_mail_flags_and_expunges_since_a_cursor(client, mirror: Mirror) -> None:
    mirror.deliver(make_message(subject="keep"))
    mirror.deliver(make_message(subject="drop"))
    assert mirror.sync().status == "success"
    start = now(client, mirror)
    assert feed(client, mirror, start)["created"] == []  # the first sync happened before

    mirror.deliver(make_message(subject="new"))
    assert mirror.sync().status == "success"
    emails = by_subject(mirror)
    step = feed(client, mirror, start)
    assert (step["created"], step["updated"], step["destroyed"], step["has_more"]) == (
        [emails["new"].id],
        [],
        [],
        False,
    )
    # The webhook payload's cursor is the position after its change: nothing new from there.
    [received] = mirror.events("email.received")
    assert feed(client, mirror, received["cursor"])["created"] == []
    assert mirror.events("sync.completed")[-1]["cursor"] == step["cursor"]  # the run's last write

    with mirror.imap() as imap:
        imap.add_flags(uids(imap, "INBOX", "keep"), [b"\\Flagged"])
    assert mirror.sync().status == "success"
    flagged = feed(client, mirror, step["cursor"])
    assert (flagged["created"], flagged["updated"], flagged["destroyed"]) == ([], [emails["keep"].id], [])

    with mirror.imap() as imap:
        imap.delete_messages(uids(imap, "INBOX", "drop"))
        imap.expunge()
    assert mirror.sync().status == "success"
    gone = feed(client, mirror, flagged["cursor"])
    assert (gone["created"], gone["updated"], gone["destroyed"]) == ([], [], [emails["drop"].id])
    assert feed(client, mirror, gone["cursor"])["destroyed"] == []

    # From the start: each email once, in its latest state.
    whole = feed(client, mirror, start)
    assert (whole["created"], whole["updated"], whole["destroyed"]) == (
        [emails["new"].id],
        [emails["keep"].id],
        [emails["drop"].id],
    )
    # Every event of the server carries a cursor, sync.completed included.
    assert all(event["cursor"] for event in mirror.events())

    # GraphQL alike, camelCase, ids as IDs.
    answer = client.post(
        "/graphql", json={"query": GQL, "variables": {"since": start, "limit": 10}}, headers=mirror.headers
    ).json()
    assert answer["data"]["changes"] == {
        "cursor": whole["cursor"],
        "hasMore": False,
        "created": [str(emails["new"].id)],
        "updated": [str(emails["keep"].id)],
        "destroyed": [str(emails["drop"].id)],
    }


def test_a_moved_message(client, mirror: Mirror) -> None:
    mirror.deliver(make_message(subject="travels"))
    with mirror.imap() as imap:
        imap.create_folder("Archive")
    assert mirror.sync().status == "success"
    before = by_subject(mirror)["travels"]
    start = now(client, mirror)
    with mirror.imap() as imap:
        imap.move(uids(imap, "INBOX", "travels"), "Archive")
    assert mirror.sync().status == "success"
    after = by_subject(mirror)["travels"]
    assert after.folder == "Archive"
    moved = feed(client, mirror, start)
    if MOVES_KEEP_IDS:
        assert after.id == before.id
        assert (moved["created"], moved["updated"], moved["destroyed"]) == ([], [after.id], [])
    else:
        assert (moved["created"], moved["updated"], moved["destroyed"]) == ([after.id], [], [before.id])


def test_pages_end_inside_one_sequence(client, mirror: Mirror) -> None:
    for n in range(5):
        mirror.deliver(make_message(subject=f"batch {n}"))
    start = now(client, mirror)
    assert mirror.sync().status == "success"
    ids = sorted(email.id for email in mirror.emails())
    with session_scope() as session:
        seqs = set(session.exec(select(Email.change_seq).where(col(Email.id).in_(ids))))
    assert len(seqs) == 1  # one batch, one transaction, one sequence

    pages, cursor = [], start
    while True:
        page = feed(client, mirror, cursor, limit=2)
        pages.append(page["created"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert pages == [ids[:2], ids[2:4], ids[4:]]
    assert feed(client, mirror, cursor)["created"] == []
    assert feed(client, mirror, start, limit=1000)["created"] == ids


def test_an_expired_cursor_is_410(client, mirror: Mirror, monkeypatch) -> None:
    mirror.deliver(make_message(subject="short-lived"))
    assert mirror.sync().status == "success"
    old = now(client, mirror)
    with mirror.imap() as imap:
        imap.delete_messages(uids(imap, "INBOX", "short-lived"))
        imap.expunge()
    assert mirror.sync().status == "success"
    assert len(feed(client, mirror, old)["destroyed"]) == 1
    fresh = now(client, mirror)

    with session_scope() as session:
        session.exec(
            update(EmailTombstone)
            .where(col(EmailTombstone.owner_id) == mirror.owner_id)
            .values(created_at=utcnow() - timedelta(days=31))
        )
    assert prune_old_changes() >= 1
    response = client.get("/api/changes/", params={"since": old}, headers=mirror.headers)
    assert response.status_code == 410
    assert response.json()["code"] == "CURSOR_EXPIRED" and response.json()["detail"]
    answer = client.post(
        "/graphql", json={"query": GQL, "variables": {"since": old, "limit": 5}}, headers=mirror.headers
    ).json()
    assert answer["errors"][0]["extensions"]["code"] == "CURSOR_EXPIRED"
    # A cursor from after the pruned tombstones still reads.
    assert feed(client, mirror, fresh)["destroyed"] == []


def test_malformed_cursors_and_limits_are_400(client, mirror: Mirror) -> None:
    cursor = now(client, mirror)
    for params, field in (
        ({"since": "nonsense"}, "since"),
        ({"since": cursor[:-1] + "!"}, "since"),
        ({"since": cursor, "limit": 0}, "limit"),
        ({"since": cursor, "limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
    ):
        response = client.get("/api/changes/", params=params, headers=mirror.headers)
        assert response.status_code == 400, params
        assert list(response.json()) == [field], response.json()
    variables = {"since": "nonsense", "limit": 5}
    answer = client.post(
        "/graphql", json={"query": GQL, "variables": variables}, headers=mirror.headers
    ).json()
    assert answer["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"
    assert answer["errors"][0]["extensions"]["fields"] == {"since": ["Not a valid cursor."]}
    assert client.get("/api/changes/").status_code == 401


def test_another_users_changes_are_invisible(client, mirror: Mirror, make_user) -> None:
    _, _, other_token = make_user()
    other = {"Authorization": f"Token {other_token}"}
    theirs = client.get("/api/changes/", headers=other).json()["cursor"]
    mirror.deliver(make_message(subject="private"))
    assert mirror.sync().status == "success"
    answer = client.get("/api/changes/", params={"since": theirs}, headers=other).json()
    assert (answer["created"], answer["updated"], answer["destroyed"]) == ([], [], [])


def test_a_first_sync_writes_no_change_rows_per_email(client, mirror: Mirror) -> None:
    for n in range(30):
        mirror.deliver(make_message(subject=f"bulk {n}"))
    start = now(client, mirror)
    assert mirror.sync().status == "success"
    with session_scope() as session:
        tombstones = session.exec(
            select(func.count()).select_from(EmailTombstone).where(EmailTombstone.owner_id == mirror.owner_id)
        ).one()
        counter = session.get(ChangeCounter, mirror.owner_id)
        stamps = set(session.exec(select(Email.created_seq).where(Email.owner_id == mirror.owner_id)))
    assert tombstones == 0
    # One counter row per user; bumped once per transaction (batches, events), not per email.
    assert counter is not None and counter.value < 30
    assert 0 not in stamps
    assert len(feed(client, mirror, start, limit=1000)["created"]) == 30


def test_deleting_a_server_ends_its_feed(client, mirror: Mirror) -> None:
    mirror.deliver(make_message(subject="a"))
    assert mirror.sync().status == "success"
    with mirror.imap() as imap:
        imap.delete_messages(uids(imap, "INBOX", "a"))
        imap.expunge()
    start = now(client, mirror)
    assert mirror.sync().status == "success"
    assert client.delete(f"/api/imap-servers/{mirror.server_id}/", headers=mirror.headers).status_code == 204
    with session_scope() as session:
        assert crud_changes.counter(session, mirror.owner_id).value > 0
    # Its tombstones went with it (cascade): its ids are in no later feed.
    assert feed(client, mirror, start) == {
        "cursor": feed(client, mirror)["cursor"],
        "has_more": False,
        "created": [],
        "updated": [],
        "destroyed": [],
    }


def test_a_huge_cursor_is_refused_unread_and_an_empty_one_starts_from_now(client, mirror: Mirror) -> None:
    huge = client.get("/api/changes/", params={"since": "v1:" + "9" * 50_000}, headers=mirror.headers)
    assert huge.status_code == 400 and list(huge.json()) == ["since"]
    empty = client.get("/api/changes/", params={"since": ""}, headers=mirror.headers)
    assert empty.status_code == 200 and empty.json()["cursor"] == now(client, mirror)
