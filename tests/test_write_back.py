"""Write-back against the real Dovecot, on SQLite and PostgreSQL, through GraphQL and REST: flags, moves
(MOVE, COPY + UID EXPUNGE, neither), deletes, batches; gone messages, missing folders, IMAP down, a sync
in the way. What the server holds afterwards is read back over IMAP."""

from __future__ import annotations

from typing import Any

import pytest

from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from tests.conftest import Mirror
from tests.support.imap_proxy import ImapProxy, without_capabilities
from tests.support.messages import make_message
from tests.support.serve import free_port

EMAIL = "id folder seen flagged answered flags"
UPDATE = f"""mutation($id: ID!, $seen: Boolean, $flagged: Boolean, $add: [String!], $remove: [String!]) {{
  updateEmail(id: $id, seen: $seen, flagged: $flagged, flagsAdd: $add, flagsRemove: $remove) {{
    {EMAIL} }} }}"""
MOVE = f"mutation($id: ID!, $folder: String!) {{ moveEmail(id: $id, folder: $folder) {{ {EMAIL} }} }}"
DELETE = "mutation($id: ID!, $permanent: Boolean!) { deleteEmail(id: $id, permanent: $permanent) }"
BATCH = """mutation($ids: [ID!]!, $action: EmailAction!, $seen: Boolean, $folder: String) {
  batchEmails(ids: $ids, action: $action, seen: $seen, folder: $folder) { id status code detail } }"""


def gql(client, mirror: Mirror, query: str, **variables: Any) -> dict[str, Any]:
    """Run a GraphQL operation as the mirror's owner; the whole answer."""
    return client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=mirror.headers
    ).json()


def error_code(answer: dict[str, Any]) -> str:
    """The code of the answer's first error."""
    return answer["errors"][0]["extensions"]["code"]


def on_server(mirror: Mirror, folder: str) -> dict[str, str]:
    """Subject → flags of the messages in a folder, read over IMAP."""
    with mirror.imap() as imap:
        imap.select_folder(folder, readonly=True)
        fetched = imap.fetch(imap.search(["ALL"]), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    found = {}
    for data in fetched.values():
        subject = data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip()
        found[subject] = " ".join(sorted(flag.decode() for flag in data[b"FLAGS"] if flag != b"\\Recent"))
    return found


def email_of(mirror: Mirror, subject: str):
    """The mirrored email with that subject."""
    (email,) = mirror.emails(subject=subject)
    return email


@pytest.fixture()
def mailbox(mirror: Mirror) -> Mirror:
    """Three messages in INBOX and one in Archive, mirrored."""
    for subject in ("first", "second", "third"):
        mirror.deliver(make_message(subject=subject))
    mirror.deliver(make_message(subject="archived"), folder="Archive")
    mirror.sync()
    return mirror


def test_flags_change_on_the_server_and_in_the_mirror_once(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "first")
    answer = gql(client, mailbox, UPDATE, id=email.id, seen=True, add=["$Work"])
    assert "errors" not in answer, answer
    changed = answer["data"]["updateEmail"]
    assert (changed["id"], changed["seen"], changed["folder"]) == (str(email.id), True, "INBOX")
    assert "$Work" in changed["flags"] and "\\Seen" in changed["flags"]
    assert on_server(mailbox, "INBOX")["first"] == "$Work \\Seen"
    (event,) = mailbox.events("email.updated")
    assert (event["id"], event["seen"]) == (email.id, True)
    mailbox.sync()  # the next sync finds nothing new to say
    assert len(mailbox.events("email.updated")) == 1
    cleared = gql(client, mailbox, UPDATE, id=email.id, seen=False, remove=["$Work"])["data"]["updateEmail"]
    assert (cleared["seen"], cleared["flags"]) == (False, [])


def test_a_move_keeps_the_id(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "second")
    moved = gql(client, mailbox, MOVE, id=email.id, folder="Archive")["data"]["moveEmail"]
    assert (moved["id"], moved["folder"]) == (str(email.id), "Archive")
    assert "second" not in on_server(mailbox, "INBOX") and "second" in on_server(mailbox, "Archive")
    (event,) = mailbox.events("email.moved")
    assert (event["id"], event["from_folder"], event["to_folder"]) == (email.id, "INBOX", "Archive")
    assert not mailbox.events("email.received") and not mailbox.events("email.deleted")
    mailbox.sync()
    assert (
        len(mailbox.events("email.moved")) == 1 and email_of(mailbox, "second").thread_id == email.thread_id
    )


@pytest.fixture()
def hidden(mailbox: Mirror, request: pytest.FixtureRequest):
    """The mailbox through a relay hiding the capabilities of the test's parameter."""
    with ImapProxy(mailbox.dovecot.host, mailbox.dovecot.port, without_capabilities(*request.param)) as proxy:
        mailbox.configure(host=proxy.host, port=proxy.port, tls_mode="none", password="secret")
        mailbox.proxy = proxy  # type: ignore[attr-defined]
        yield mailbox


@pytest.mark.parametrize("hidden", [(b"MOVE",)], indirect=True)
def test_without_move_copy_and_uid_expunge(client, hidden: Mirror) -> None:
    mirror = hidden
    with mirror.imap() as imap:  # another message marked deleted that the move must not expunge
        imap.select_folder("INBOX")
        imap.add_flags(imap.search(["SUBJECT", "third"]), [b"\\Deleted"])
    email = email_of(mirror, "second")
    moved = gql(client, mirror, MOVE, id=email.id, folder="Archive")["data"]["moveEmail"]
    assert (moved["id"], moved["folder"]) == (str(email.id), "Archive")
    texts = mirror.proxy.texts()  # type: ignore[attr-defined]
    assert any(text.startswith("UID COPY") for text in texts) and any(
        t.startswith("UID EXPUNGE") for t in texts
    )
    assert not any(text == "EXPUNGE" for text in texts)
    assert "third" in on_server(mirror, "INBOX")  # still there, \Deleted as it was


@pytest.mark.parametrize("hidden", [(b"MOVE", b"UIDPLUS")], indirect=True)
def test_without_move_or_uidplus_nothing_is_expunged(client, hidden: Mirror) -> None:
    mirror = hidden
    email = email_of(mirror, "second")
    answer = gql(client, mirror, MOVE, id=email.id, folder="Archive")
    assert error_code(answer) == "UIDPLUS_REQUIRED"
    assert "plain EXPUNGE" in answer["errors"][0]["message"]
    assert "second" in on_server(mirror, "INBOX") and "second" not in on_server(mirror, "Archive")
    assert email_of(mirror, "second").folder == "INBOX"


def test_delete_moves_to_trash_or_expunges(client, mailbox: Mirror) -> None:
    first, second = email_of(mailbox, "first"), email_of(mailbox, "second")
    assert gql(client, mailbox, DELETE, id=first.id, permanent=False)["data"]["deleteEmail"] is True
    assert "first" in on_server(mailbox, "Trash") and "first" not in on_server(mailbox, "INBOX")
    assert not mailbox.emails(subject="first")  # the Trash is not mirrored (exclude_trash)
    assert [event["id"] for event in mailbox.events("email.deleted")] == [first.id]
    assert gql(client, mailbox, DELETE, id=second.id, permanent=True)["data"]["deleteEmail"] is True
    assert "second" not in on_server(mailbox, "INBOX") and "second" not in on_server(mailbox, "Trash")
    assert [event["id"] for event in mailbox.events("email.deleted")] == [first.id, second.id]


def test_a_message_gone_from_the_server_is_not_found_and_reconciled(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "third")
    with mailbox.imap() as imap:
        imap.select_folder("INBOX")
        imap.delete_messages(imap.search(["SUBJECT", "third"]))
        imap.expunge()
    assert error_code(gql(client, mailbox, UPDATE, id=email.id, seen=True)) == "NOT_FOUND"
    assert not mailbox.emails(subject="third")
    assert [event["id"] for event in mailbox.events("email.deleted")] == [email.id]


def test_refused_before_anything_changes(client, mailbox: Mirror, make_user) -> None:
    email = email_of(mailbox, "first")
    missing = gql(client, mailbox, MOVE, id=email.id, folder="Nowhere")
    assert (
        error_code(missing) == "VALIDATION_ERROR" and "folder" in missing["errors"][0]["extensions"]["fields"]
    )
    assert error_code(gql(client, mailbox, UPDATE, id=email.id, add=["bad flag"])) == "VALIDATION_ERROR"
    assert error_code(gql(client, mailbox, UPDATE, id=email.id, add=["\\Recent"])) == "VALIDATION_ERROR"
    assert error_code(gql(client, mailbox, UPDATE, id=email.id)) == "VALIDATION_ERROR"  # nothing to change
    stranger = make_user()[2]
    foreign = client.post(
        "/graphql",
        json={"query": UPDATE, "variables": {"id": email.id, "seen": True}},
        headers={"Authorization": f"Token {stranger}"},
    ).json()
    assert error_code(foreign) == "NOT_FOUND"
    assert on_server(mailbox, "INBOX")["first"] == ""


def test_imap_down_leaves_the_mirror_as_it_was(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "first")
    mailbox.configure(port=free_port(), password="secret")  # nobody listens there
    answer = gql(client, mailbox, UPDATE, id=email.id, seen=True)
    assert error_code(answer) == "IMAP_CONNECTION_FAILED"
    assert email_of(mailbox, "first").seen is False and not mailbox.events("email.updated")


def test_a_write_waits_for_a_sync_then_says_busy(client, mailbox: Mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "write_wait_seconds", 0.3)
    with session_scope() as session:  # a sync of another worker holds the server
        assert crud_runs.acquire_lease(session, server_id=mailbox.server_id, holder="elsewhere", seconds=60)
    email = email_of(mailbox, "first")
    assert error_code(gql(client, mailbox, UPDATE, id=email.id, seen=True)) == "SERVER_BUSY"
    assert on_server(mailbox, "INBOX")["first"] == ""
    with session_scope() as session:
        crud_runs.release_lease(session, server_id=mailbox.server_id, holder="elsewhere")
    assert gql(client, mailbox, UPDATE, id=email.id, seen=True)["data"]["updateEmail"]["seen"] is True


@pytest.mark.parametrize("hidden", [()], indirect=True)
def test_a_batch_sends_one_command_per_folder(client, hidden: Mirror) -> None:
    mirror = hidden
    ids = [email.id for email in mirror.emails()]
    mirror.proxy.clear()  # type: ignore[attr-defined]
    answer = gql(client, mirror, BATCH, ids=[*ids, 999_999], action="MODIFY", seen=True)
    results = answer["data"]["batchEmails"]
    assert [(r["id"], r["status"]) for r in results] == [(str(i), "ok") for i in ids] + [
        ("999999", "not_found")
    ]
    stores = [t for t in mirror.proxy.texts() if t.startswith("UID STORE")]  # type: ignore[attr-defined]
    assert len(stores) == 2, stores  # INBOX and Archive
    assert all(flags == "\\Seen" for flags in on_server(mirror, "INBOX").values())
    assert on_server(mirror, "Archive") == {"archived": "\\Seen"}
    assert len(mirror.events("email.updated")) == 4
    moved = gql(client, mirror, BATCH, ids=ids[:2], action="MOVE", folder="Drafts")["data"]["batchEmails"]
    assert [r["status"] for r in moved] == ["ok", "ok"]
    assert {email.folder for email in mirror.emails() if email.id in ids[:2]} == {"Drafts"}


# --- REST ----------------------------------------------------------------------------------------


def test_rest_patch_answers_the_detail(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "first")
    answer = client.patch(
        f"/api/emails/{email.id}/",
        headers=mailbox.headers,
        json={"seen": True, "flagged": True, "flags_add": ["$Work"]},
    )
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    assert (detail["id"], detail["seen"], detail["flagged"]) == (email.id, True, True)
    assert detail["flags"] == ["$Work", "\\Flagged", "\\Seen"]
    assert detail == client.get(f"/api/emails/{email.id}/", headers=mailbox.headers).json()
    assert on_server(mailbox, "INBOX")["first"] == "$Work \\Flagged \\Seen"


def test_rest_bad_input_is_a_400_with_field_errors(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "first")
    url = f"/api/emails/{email.id}/"
    cases = [
        ({"seen": "perhaps"}, {"seen": ["Must be a valid boolean."]}),
        ({"flags_add": "$Work"}, {"flags_add": ['Expected a list of items but got type "str".']}),
        ({"flags_add": ["two words"]}, {"flags_add": ["Not an IMAP flag: 'two words'."]}),
        ({}, {"non_field_errors": ["Nothing to change."]}),
    ]
    for body, expected in cases:
        answer = client.patch(url, headers=mailbox.headers, json=body)
        assert (answer.status_code, answer.json()) == (400, expected), body
    moved = client.post(f"{url}move/", headers=mailbox.headers, json={"folder": "Nowhere"})
    assert (moved.status_code, moved.json()) == (
        400,
        {"folder": ["No folder 'Nowhere' on this IMAP server."]},
    )
    assert client.post(f"{url}move/", headers=mailbox.headers, json={}).status_code == 400
    assert client.delete(f"{url}?permanent=maybe", headers=mailbox.headers).status_code == 400
    assert (
        client.patch("/api/emails/999999/", headers=mailbox.headers, json={"seen": True}).status_code == 404
    )
    assert client.patch(url, json={"seen": True}).status_code == 401
    assert on_server(mailbox, "INBOX")["first"] == ""


def test_rest_move_and_delete(client, mailbox: Mirror) -> None:
    first, second = email_of(mailbox, "first"), email_of(mailbox, "second")
    moved = client.post(f"/api/emails/{first.id}/move/", headers=mailbox.headers, json={"folder": "Archive"})
    assert moved.status_code == 200 and (moved.json()["id"], moved.json()["folder"]) == (first.id, "Archive")
    to_junk = client.post(f"/api/emails/{second.id}/move/", headers=mailbox.headers, json={"folder": "Junk"})
    assert to_junk.status_code == 204  # Junk is not mirrored (exclude_trash): the email left the mirror
    assert "second" in on_server(mailbox, "Junk") and not mailbox.emails(subject="second")
    third = email_of(mailbox, "third")
    assert client.delete(f"/api/emails/{third.id}/", headers=mailbox.headers).status_code == 204
    assert "third" in on_server(mailbox, "Trash")
    assert client.delete(f"/api/emails/{third.id}/", headers=mailbox.headers).status_code == 404


def test_rest_imap_down_is_a_502_with_a_code(client, mailbox: Mirror) -> None:
    email = email_of(mailbox, "first")
    mailbox.configure(port=free_port(), password="secret")
    answer = client.patch(f"/api/emails/{email.id}/", headers=mailbox.headers, json={"seen": True})
    assert answer.status_code == 502 and answer.json()["code"] == "IMAP_CONNECTION_FAILED"
    assert answer.json()["detail"].startswith("could not connect")


@pytest.mark.parametrize("hidden", [(b"MOVE", b"UIDPLUS")], indirect=True)
def test_rest_unsafe_expunge_is_a_409(client, hidden: Mirror) -> None:
    email = email_of(hidden, "first")
    answer = client.delete(f"/api/emails/{email.id}/?permanent=true", headers=hidden.headers)
    assert answer.status_code == 409 and answer.json()["code"] == "UIDPLUS_REQUIRED"
    assert "first" in on_server(hidden, "INBOX")


def test_rest_busy_is_a_503_with_retry_after(client, mailbox: Mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "write_wait_seconds", 0.2)
    with session_scope() as session:
        crud_runs.acquire_lease(session, server_id=mailbox.server_id, holder="elsewhere", seconds=60)
    email = email_of(mailbox, "first")
    answer = client.patch(f"/api/emails/{email.id}/", headers=mailbox.headers, json={"seen": True})
    assert (answer.status_code, answer.json()["code"], answer.headers["Retry-After"]) == (
        503,
        "SERVER_BUSY",
        "5",
    )


def test_rest_batch(client, mailbox: Mirror) -> None:
    ids = [email.id for email in mailbox.emails()]
    answer = client.post(
        "/api/emails/batch/",
        headers=mailbox.headers,
        json={"ids": [*ids, 999_999], "action": "modify", "flagged": True},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [{"id": i, "status": "ok"} for i in ids] + [
        {"id": 999_999, "status": "not_found", "code": "NOT_FOUND", "detail": "Not found."}
    ]
    assert all(email.flagged for email in mailbox.emails())
    for body, field in [
        ({"ids": "1", "action": "modify"}, "ids"),
        ({"ids": [1], "action": "explode"}, "action"),
        ({"ids": list(range(1, 1002)), "action": "delete"}, "ids"),
        ({"ids": [], "action": "delete"}, "ids"),
    ]:
        refused = client.post("/api/emails/batch/", headers=mailbox.headers, json=body)
        assert refused.status_code == 400 and field in refused.json(), (body, refused.json())
    deleted = client.post(
        "/api/emails/batch/",
        headers=mailbox.headers,
        json={"ids": ids, "action": "delete", "permanent": True},
    ).json()["results"]
    assert [r["status"] for r in deleted] == ["ok"] * len(ids) and not mailbox.emails()
    assert on_server(mailbox, "INBOX") == {} and on_server(mailbox, "Archive") == {}


def test_a_read_only_folder_is_a_409(client, mailbox: Mirror) -> None:
    def read_only(line: bytes) -> bytes:  # as a server answers SELECT on a folder the user may not change
        return line.replace(b"[READ-WRITE]", b"[READ-ONLY]")

    with ImapProxy(mailbox.dovecot.host, mailbox.dovecot.port, read_only) as proxy:
        mailbox.configure(host=proxy.host, port=proxy.port, tls_mode="none", password="secret")
        email = email_of(mailbox, "first")
        answer = client.patch(f"/api/emails/{email.id}/", headers=mailbox.headers, json={"seen": True})
        assert (answer.status_code, answer.json()["code"]) == (409, "READ_ONLY_FOLDER")
        assert error_code(gql(client, mailbox, MOVE, id=email.id, folder="Archive")) == "READ_ONLY_FOLDER"
        assert not any(t.startswith(("UID STORE", "UID MOVE")) for t in proxy.texts())
    assert on_server(mailbox, "INBOX")["first"] == ""


def test_a_connection_lost_mid_write_is_a_502_and_the_next_sync_catches_up(client, mailbox: Mirror) -> None:
    def cut_after_store(line: bytes) -> bytes:  # the server did it; its answer never comes back
        if b"Store completed" in line:
            raise ConnectionResetError("cut")
        return line

    with ImapProxy(mailbox.dovecot.host, mailbox.dovecot.port, cut_after_store) as proxy:
        mailbox.configure(host=proxy.host, port=proxy.port, tls_mode="none", password="secret")
        email = email_of(mailbox, "first")
        answer = client.patch(f"/api/emails/{email.id}/", headers=mailbox.headers, json={"seen": True})
        assert (answer.status_code, answer.json()["code"]) == (502, "IMAP_CONNECTION_LOST")
    assert on_server(mailbox, "INBOX")["first"] == "\\Seen"
    mailbox.configure(
        host=mailbox.dovecot.host, port=mailbox.dovecot.port, tls_mode="starttls", password="secret"
    )
    mailbox.sync()
    assert email_of(mailbox, "first").seen is True
