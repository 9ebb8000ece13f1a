"""REST endpoints as apidoc.md documents them, with Django REST Framework's behaviour where it is silent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.support.messages import make_message

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SERVER = {
    "name": "My Gmail",
    "host": "imap.gmail.com",
    "port": 993,
    "username": "me@example.com",
    "password": "your-password",
    "use_ssl": True,
    "sync_limit_type": "days",
    "sync_limit_value": 30,
    "folders_to_sync": "INBOX,Sent",
    "exclude_trash": True,
}


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_imap_server_crud(client, auth, prefix) -> None:
    created = client.post(f"{prefix}/imap-servers/", json=SERVER, headers=auth)
    assert created.status_code == 201
    body = created.json()
    assert "password" not in body and "password_encrypted" not in body
    for field in (
        "name",
        "host",
        "port",
        "username",
        "use_ssl",
        "sync_limit_type",
        "sync_limit_value",
        "folders_to_sync",
        "exclude_trash",
    ):
        assert body[field] == SERVER[field]
    assert body["last_sync"] is None and isinstance(body["id"], int)
    url = f"{prefix}/imap-servers/{body['id']}/"

    listed = client.get(f"{prefix}/imap-servers/", headers=auth).json()
    assert listed == {"count": 1, "next": None, "previous": None, "results": [body]}

    updated = client.put(
        url, json={"name": "Updated Gmail", "sync_limit_type": "weeks", "sync_limit_value": 2}, headers=auth
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "Updated Gmail" and updated.json()["host"] == "imap.gmail.com"
    assert updated.json()["sync_limit_type"] == "weeks" and updated.json()["sync_limit_value"] == 2
    # A new port or TLS setting needs the password again (tests/test_imap_server_security.py).
    patched = client.patch(
        url, json={"port": "143", "use_ssl": "false", "password": "new-password"}, headers=auth
    ).json()
    assert patched["port"] == 143 and patched["use_ssl"] is False and patched["tls_mode"] == "starttls"
    assert ISO_Z.match(patched["created_at"]) and ISO_Z.match(patched["updated_at"])

    assert client.delete(url, headers=auth).status_code == 204
    assert client.get(url, headers=auth).status_code == 404


def test_create_defaults_and_normalisation(client, auth) -> None:
    body = client.post(
        "/api/imap-servers/",
        json={
            "name": "Home",
            "host": "mail.example.com",
            "username": "u",
            "password": "p",
            "folders_to_sync": " INBOX , Sent ,, ",
        },
        headers=auth,
    ).json()
    assert (
        body["port"],
        body["use_ssl"],
        body["sync_limit_type"],
        body["sync_limit_value"],
        body["exclude_trash"],
    ) == (993, True, "all", None, True)
    assert body["folders_to_sync"] == "INBOX,Sent"


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (
            {},
            {
                "name": ["This field is required."],
                "host": ["This field is required."],
                "username": ["This field is required."],
                "password": ["This field is required."],
            },
        ),
        ({**SERVER, "sync_limit_type": "foo"}, {"sync_limit_type": ['"foo" is not a valid choice.']}),
        (
            {**SERVER, "sync_limit_type": "days", "sync_limit_value": None},
            {"sync_limit_value": ['This field is required when sync_limit_type is "days".']},
        ),
        (
            {**SERVER, "sync_limit_value": 0},
            {"sync_limit_value": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({**SERVER, "port": "abc"}, {"port": ["A valid integer is required."]}),
        ({**SERVER, "port": 70000}, {"port": ["Ensure this value is less than or equal to 65535."]}),
        ({**SERVER, "use_ssl": "maybe"}, {"use_ssl": ["Must be a valid boolean."]}),
        ({**SERVER, "name": ""}, {"name": ["This field may not be blank."]}),
        ({**SERVER, "host": ["a"]}, {"host": ["Not a valid string."]}),
    ],
)
def test_validation_errors(client, auth, payload, errors) -> None:
    response = client.post("/api/imap-servers/", json=payload, headers=auth)
    assert response.status_code == 400
    assert response.json() == errors


def test_malformed_json_and_wrong_method(client, auth) -> None:
    response = client.post(
        "/api/imap-servers/", content=b'{"name": ', headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["detail"].startswith("JSON parse error")
    response = client.post("/api/emails/statistics/", headers=auth)
    assert response.status_code == 405 and response.json() == {"detail": 'Method "POST" not allowed.'}


def test_unknown_and_foreign_ids_are_404(client, auth, make_user) -> None:
    other = {"Authorization": f"Token {make_user()[2]}"}
    server = client.post("/api/imap-servers/", json=SERVER, headers=auth).json()
    for url in (
        f"/api/imap-servers/{server['id']}/",
        "/api/imap-servers/999999/",
        "/api/imap-servers/abc/",
        "/api/imap-servers/243566244526/",
        "/api/emails/99999999999999/",
        "/api/emails/999999/",
        "/api/emails/abc/thread/",
    ):
        response = client.get(url, headers=other)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, url
    assert client.delete(f"/api/imap-servers/{server['id']}/", headers=other).status_code == 404
    assert (
        client.put(f"/api/imap-servers/{server['id']}/", json={"name": "x"}, headers=other).status_code == 404
    )


def test_server_pagination_links(client, auth) -> None:
    for number in range(5):
        client.post("/api/imap-servers/", json={**SERVER, "name": f"s{number}"}, headers=auth)
    first = client.get("/api/imap-servers/?page_size=2", headers=auth).json()
    assert first["count"] == 5 and first["previous"] is None
    assert first["next"] == "http://testserver/api/imap-servers/?page_size=2&page=2"
    second = client.get(first["next"], headers=auth).json()
    assert second["previous"] == "http://testserver/api/imap-servers/?page_size=2"
    last = client.get("/api/imap-servers/?page_size=2&page=last", headers=auth).json()
    assert [s["name"] for s in last["results"]] == ["s4"] and last["next"] is None
    for page in ("0", "4", "abc"):
        response = client.get(f"/api/imap-servers/?page_size=2&page={page}", headers=auth)
        assert response.status_code == 404 and response.json() == {"detail": "Invalid page."}


@pytest.fixture()
def synced(client, mirror):
    """A synced mailbox with a three-message thread, reached through REST."""
    stamp = lambda d: datetime(2024, 11, d, 12, 0, tzinfo=UTC)  # noqa: E731
    mirror.deliver(
        make_message(subject="Original Email", message_id="<o@x>", date=stamp(27), body="Original content")
    )
    mirror.deliver(
        make_message(
            subject="Re: Original Email",
            message_id="<r@x>",
            in_reply_to="<o@x>",
            references=["<o@x>"],
            date=stamp(28),
            body="Reply content",
            html="<html>Reply HTML content</html>",
        ),
        folder="Sent",
    )
    mirror.deliver(
        make_message(subject="Lighthouse tour", message_id="<l@x>", date=stamp(29), body="see you")
    )
    response = client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
    assert response.json() == {
        "status": "success",
        "message": "Email sync completed",
        "sync_run": response.json()["sync_run"],
        "messages_new": 3,
        "messages_updated": 0,
        "messages_deleted": 0,
    }
    return mirror


def test_email_list_shape(client, synced) -> None:
    body = client.get("/api/emails/", headers=synced.headers).json()
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    item = body["results"][0]
    assert set(item) >= {
        "id",
        "message_id",
        "subject",
        "sender",
        "recipient",
        "date",
        "folder",
        "thread_id",
        "thread_count",
    }
    assert item["subject"] == "Lighthouse tour" and item["thread_count"] == 1 and ISO_Z.match(item["date"])
    assert item["message_id"] == "<l@x>" and item["sender"] == "alice@example.com"


def test_email_filters_and_errors(client, synced) -> None:
    get = lambda query: client.get("/api/emails/?" + query, headers=synced.headers)  # noqa: E731
    assert [e["subject"] for e in get("q=lighthouse").json()["results"]] == ["Lighthouse tour"]
    assert [e["subject"] for e in get("folder=Sent").json()["results"]] == ["Re: Original Email"]
    assert get("date_from=2024-11-28&date_to=2024-11-28").json()["count"] == 1
    assert get(f"imap_server={synced.server_id}").json()["count"] == 3
    assert [e["subject"] for e in get("ordering=subject").json()["results"]][0] == "Lighthouse tour"
    assert get("thread=true").json()["count"] == 2
    bad = get("date_from=2024-13-01")
    assert bad.status_code == 400
    assert bad.json() == {
        "date_from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]
    }
    assert get("thread=perhaps").status_code == 400
    page = get("page_size=1&q=e&ordering=date").json()
    assert page["next"] == "http://testserver/api/emails/?page_size=1&q=e&ordering=date&page=2"
    assert get("page=9").status_code == 404


def test_email_detail_and_thread(client, synced) -> None:
    reply_id = synced.emails(message_id="<r@x>")[0].id
    original_id = synced.emails(message_id="<o@x>")[0].id
    detail = client.get(f"/api/emails/{original_id}/", headers=synced.headers).json()
    assert detail["body_text"].startswith("Original content") and detail["in_reply_to"] == ""
    assert ISO_Z.match(detail["created_at"]) and ISO_Z.match(detail["updated_at"])
    assert [member["id"] for member in detail["thread_emails"]] == [reply_id]
    assert detail["thread_emails"][0]["body_html"].startswith("<html>Reply HTML content</html>")
    assert set(detail["thread_emails"][0]) == {
        "id",
        "subject",
        "sender",
        "recipient",
        "date",
        "body_text",
        "body_html",
        "folder",
    }
    thread = client.get(f"/api/emails/{reply_id}/thread/", headers=synced.headers).json()
    assert [member["subject"] for member in thread] == ["Original Email", "Re: Original Email"]
    threads = client.get("/api/emails/threads/", headers=synced.headers).json()
    assert threads["count"] == 2
    assert {row["subject"]: row["thread_count"] for row in threads["results"]} == {
        "Re: Original Email": 2,
        "Lighthouse tour": 1,
    }


def test_folders_and_statistics(client, synced) -> None:
    assert client.get("/api/emails/folders/", headers=synced.headers).json()[:1] == ["INBOX"]
    stats = client.get("/api/v1/emails/statistics/", headers=synced.headers).json()
    assert stats == {"total_emails": 3, "total_threads": 2, "folders": {"INBOX": 2, "Sent": 1}}


def test_rest_and_graphql_agree(client, synced) -> None:
    rest = client.get("/api/emails/?ordering=-date", headers=synced.headers).json()["results"]
    graphql = client.post(
        "/graphql",
        headers=synced.headers,
        json={"query": '{ emails(ordering: "-date") { results { id subject threadId threadCount date } } }'},
    ).json()
    assert [(r["id"], r["subject"], r["thread_id"], r["thread_count"]) for r in rest] == [
        (int(g["id"]), g["subject"], g["threadId"], g["threadCount"])
        for g in graphql["data"]["emails"]["results"]
    ]


def test_odd_credentials_are_refused_cleanly(client) -> None:
    response = client.post("/api-token-auth/", json={"username": "a\x00b", "password": "x"})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}
