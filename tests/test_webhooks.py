"""Webhooks end to end: API, outbox relay, signed delivery to a real HTTP receiver, retries, crashes.

Runs on SQLite and PostgreSQL. Deliveries go through the embedded worker (the ``client`` fixture)
or through the thin functions the actors wrap, to a real HTTP server on 127.0.0.1. Signatures are
checked with a verifier written here from the Standard Webhooks spec, not with imap2api's own.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from imap2api.config import settings
from imap2api.crud import events as crud_events
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.crud import webhooks as crud_webhooks
from imap2api.db import session_scope
from imap2api.models import Event, Webhook, WebhookDelivery
from imap2api.security import decrypt_secret
from imap2api.validation import validate_server
from imap2api.webhooks import signing
from imap2api.webhooks.addresses import AddressRefused, refusal_reason, resolve_target
from imap2api.webhooks.dispatch import (
    create_pending_deliveries,
    deliver,
    event_message,
    relay_events,
    requeue_overdue,
)
from imap2api.webhooks.retry import backoff_seconds, is_final, parse_retry_after, retry_delay
from imap2api.webhooks.sender import SendResult
from imap2api.webhooks.signing import new_secret
from imap2api.webhooks.validation import validate_webhook
from imap2api.workers.webhooks import enqueue_delivery, webhook_tick
from tests.support.messages import make_message
from tests.support.receiver import Receiver
from tests.support.webhook_checks import spec_verify, wait_until

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ALL_EVENTS = ["email.received", "thread.updated", "sync.completed"]
ALL_EVENT_NAMES = ["EMAIL_RECEIVED", "THREAD_UPDATED", "SYNC_COMPLETED"]  # the GraphQL enum
WEBHOOK_FIELDS = "id url events imapServer isActive disabledReason failingSince createdAt updatedAt"

# The reference vector of the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_independent_verifier_and_the_signer_agree_with_the_spec_vector() -> None:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert spec_verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)
    assert not spec_verify(SPEC_SECRET, headers, SPEC_BODY + b" ", now=SPEC_TIMESTAMP)
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    signing.verify(
        SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, f"v1,bogus {SPEC_SIGNATURE}", now=SPEC_TIMESTAMP
    )
    with pytest.raises(signing.InvalidSignature):
        signing.verify(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY, SPEC_SIGNATURE)  # too old now
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    fresh = signing.headers(secret, "evt_1", b"{}")
    assert spec_verify(secret, fresh, b"{}")


# --- pure parts: retry schedule and address policy ---------------------------------------------


def test_the_retry_schedule_backs_off_and_spans_about_a_day() -> None:
    failed = SendResult(503, "", "", 5)
    start = now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = []
    while (
        delay := retry_delay(
            failed,
            failures=len(waits) + 1,
            chain_started=start,
            now=now,
            base=30,
            span=86400,
            rand=lambda: 0.5,
        )
    ) is not None:
        waits.append(delay)
        now += timedelta(seconds=delay)
    assert waits[:3] == [30, 60, 120] and all(b >= a for a, b in zip(waits, waits[1:-1], strict=False))
    assert max(waits) <= 6 * 3600
    assert (now - start) == timedelta(days=1) and 10 <= len(waits) <= 20
    jittered = {round(backoff_seconds(3, base=30, span=86400, rand=lambda r=r: r)) for r in (0, 0.5, 0.999)}
    assert jittered == {90, 120, 150}

    assert [is_final(SendResult(code, "", "", 1)) for code in (400, 404, 410, 408, 429, 500, 302)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert is_final(SendResult(None, "", "address refused", 1, refused=True))
    assert not is_final(SendResult(None, "", "timeout", 1))
    assert parse_retry_after("120", now=start) == 120
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=start) == 60
    assert parse_retry_after("soon", now=start) is None
    asked = SendResult(429, "", "", 1, retry_after="3600")
    assert retry_delay(asked, failures=1, chain_started=start, now=start, base=30, span=86400) == 3600
    assert retry_delay(asked, failures=1, chain_started=start, now=start, base=30, span=600) is None


def test_private_loopback_and_link_local_addresses_are_refused() -> None:
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
    ):
        assert refusal_reason(ipaddress.ip_address(address)) is not None, address
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert refusal_reason(ipaddress.ip_address(address)) is None, address
    with pytest.raises(AddressRefused, match="127.0.0.1 is a loopback address"):
        resolve_target("http://127.0.0.1:8080/hook", allow_private=False)
    # A name's refusal never says what it resolves to (no DNS oracle for internal names).
    with pytest.raises(AddressRefused) as refused:
        resolve_target("http://localhost:8080/hook", allow_private=False)
    assert str(refused.value) == (
        "localhost is not a public address; deliveries there are refused (IMAP2API_WEBHOOK_ALLOW_PRIVATE)"
    )
    target = resolve_target("http://localhost:8080/hook?x=1", allow_private=True)
    assert target.ip in ("127.0.0.1", "::1") and target.host_header == "localhost:8080"
    assert target.url.host == target.ip and target.url.path == "/hook" and target.url.query == b"x=1"
    assert resolve_target("https://93.184.216.34/h", allow_private=False).sni_hostname == "93.184.216.34"


# --- helpers -----------------------------------------------------------------------------------


def gql(client, headers: dict[str, str], query: str, **variables) -> dict:  # noqa: ANN001
    """Run a GraphQL operation over HTTP."""
    response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def deliveries_of(webhook_id: int) -> list:
    """Every attempt of a webhook, oldest first, straight from the database."""
    with session_scope() as session:
        return list(
            session.exec(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(col(WebhookDelivery.id))
            )
        )


def webhook_row(webhook_id: int):  # noqa: ANN201
    """The stored webhook row."""
    with session_scope() as session:
        return session.get(Webhook, webhook_id)


def settled(webhook_id: int, owner_id: int | None = None) -> bool:
    """Every event of the owner is relayed and no attempt of the webhook is waiting or in flight."""
    if owner_id is not None:
        with session_scope() as session:
            waiting = session.exec(
                select(Event.id).where(Event.owner_id == owner_id, col(Event.dispatched_at).is_(None))
            ).first()
        if waiting is not None:
            return False
    return all(d.status not in ("pending", "sending") for d in deliveries_of(webhook_id))


def owner_id_of(token: str) -> int:
    """The user id behind a token."""
    with session_scope() as session:
        return crud_users.user_for_token(session, key=token).id


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback."""
    with Receiver() as running:
        yield running


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch) -> Iterator[None]:  # noqa: ANN001
    """Tiny backoff for these tests (each test has a broker of its own: see conftest)."""
    monkeypatch.setattr(settings, "webhook_retry_base_seconds", 0.05)
    monkeypatch.setattr(settings, "webhook_timeout_seconds", 5.0)
    yield


CREATE = f"""mutation($input: WebhookInput!) {{ createWebhook(input: $input) {{
  secret webhook {{ {WEBHOOK_FIELDS} }} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: WebhookInput!) {{ updateWebhook(id: $id, input: $input) {{
  {WEBHOOK_FIELDS} }} }}"""
TEST = "mutation($id: ID!) { testWebhook(id: $id) { id eventId eventType attempt status } }"
DELIVERIES = """query($id: ID!) { webhookDeliveries(webhookId: $id) { count results {
  id eventId eventType attempt status responseStatus responseBody error durationMs createdAt
  nextAttemptAt } } }"""


def create_webhook(client, headers: dict[str, str], **fields) -> tuple[int, str]:  # noqa: ANN001
    """Create a webhook over REST; returns (id, secret)."""
    response = client.post("/api/webhooks/", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["secret"]


# --- the API ----------------------------------------------------------------------------------


def test_graphql_crud_validation_and_ownership(client, make_user) -> None:
    _, _, token = make_user()
    me = {"Authorization": f"Token {token}"}
    other = {"Authorization": f"Token {make_user()[2]}"}
    server = client.post(
        "/api/imap-servers/",
        headers=me,
        json={"name": "s", "host": "imap.example.com", "username": "u", "password": "p"},
    ).json()
    theirs = client.post(
        "/api/imap-servers/",
        headers=other,
        json={"name": "s", "host": "imap.example.com", "username": "u", "password": "p"},
    ).json()

    created = gql(client, me, CREATE, input={"url": "https://hooks.example.com/in"})["data"]["createWebhook"]
    hook = created["webhook"]
    assert created["secret"].startswith("whsec_") and len(base64.b64decode(created["secret"][6:])) >= 24
    assert hook["events"] == ALL_EVENT_NAMES and hook["isActive"] is True and hook["imapServer"] is None
    assert hook["disabledReason"] == "" and hook["failingSince"] is None

    # The secret is never readable again: the Webhook type has no such field.
    fields = gql(client, me, '{ __type(name: "Webhook") { fields { name } } }')["data"]["__type"]["fields"]
    assert "secret" not in {field["name"] for field in fields}

    changed = gql(
        client,
        me,
        UPDATE,
        id=hook["id"],
        input={
            "events": ["SYNC_COMPLETED", "EMAIL_RECEIVED", "EMAIL_RECEIVED"],
            "imapServer": str(server["id"]),
        },
    )
    assert changed["data"]["updateWebhook"]["events"] == ["EMAIL_RECEIVED", "SYNC_COMPLETED"]
    assert changed["data"]["updateWebhook"]["imapServer"] == str(server["id"])
    assert changed["data"]["updateWebhook"]["url"] == "https://hooks.example.com/in"

    listed = gql(client, me, f"{{ webhooks {{ count results {{ {WEBHOOK_FIELDS} }} }} }}")["data"]["webhooks"]
    assert listed["count"] == 1 and listed["results"][0] == changed["data"]["updateWebhook"]

    bad = gql(
        client,
        me,
        CREATE,
        input={
            "url": "ftp://x.example.com/",
            "events": ["EMAIL_RECEIVED"],
            "imapServer": str(theirs["id"]),
        },
    )
    error = bad["errors"][0]
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert error["extensions"]["fields"] == {"url": ["Enter a valid URL."]}
    # events is a list of the EventType enum: GraphQL itself refuses a name it lacks.
    unknown = gql(client, me, CREATE, input={"url": "https://a.example", "events": ["foo", "EMAIL_RECEIVED"]})
    assert unknown["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    for url in ("", "https://", "not a url", "http://exa mple.com/", "javascript:alert(1)"):
        fields = gql(client, me, CREATE, input={"url": url})["errors"][0]["extensions"]["fields"]
        assert "url" in fields, url
    missing = gql(client, me, CREATE, input={"events": ["SYNC_COMPLETED"]})["errors"][0]
    assert missing["extensions"]["fields"] == {"url": ["This field is required."]}
    empty = gql(client, me, CREATE, input={"url": "https://a.example", "events": []})["errors"][0]
    assert empty["extensions"]["fields"] == {"events": ["This selection may not be empty."]}
    foreign = gql(client, me, CREATE, input={"url": "https://a.example", "imapServer": str(theirs["id"])})
    assert foreign["errors"][0]["extensions"]["fields"] == {
        "imapServer": [f'Invalid pk "{theirs["id"]}" - object does not exist.']
    }

    # Someone else's webhook does not exist for them, whatever they try.
    for query, variables in [
        ("query($id: ID!) { webhook(id: $id) { id } }", {"id": hook["id"]}),
        (DELIVERIES, {"id": hook["id"]}),
        (UPDATE, {"id": hook["id"], "input": {"url": "https://evil.example"}}),
        ("mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }", {"id": hook["id"]}),
        (TEST, {"id": hook["id"]}),
        ("mutation($id: ID!) { deleteWebhook(id: $id) }", {"id": hook["id"]}),
        ("mutation($id: ID!) { redeliver(deliveryId: $id) { id } }", {"id": "1"}),
    ]:
        result = gql(client, other, query, **variables)
        assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND", query
    assert gql(client, {}, "{ webhooks { count } }")["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    rotated = gql(
        client,
        me,
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret webhook { id } } }",
        id=hook["id"],
    )["data"]["rotateWebhookSecret"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert gql(client, me, "mutation($id: ID!) { deleteWebhook(id: $id) }", id=hook["id"])["data"] == {
        "deleteWebhook": True
    }
    assert gql(client, me, "{ webhooks { count } }")["data"]["webhooks"]["count"] == 0


@pytest.mark.parametrize("prefix", ["/api", "/api/v1"])
def test_rest_crud(client, make_user, prefix) -> None:
    me = {"Authorization": f"Token {make_user()[2]}"}
    other = {"Authorization": f"Token {make_user()[2]}"}
    created = client.post(f"{prefix}/webhooks/", headers=me, json={"url": "https://hooks.example.com/a"})
    assert created.status_code == 201
    body = created.json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_")
    assert set(body) == {
        "id",
        "url",
        "events",
        "imap_server",
        "is_active",
        "disabled_reason",
        "failing_since",
        "created_at",
        "updated_at",
    }
    assert body["events"] == ALL_EVENTS and body["imap_server"] is None and body["is_active"] is True
    assert ISO_Z.match(body["created_at"]) and ISO_Z.match(body["updated_at"])
    url = f"{prefix}/webhooks/{body['id']}/"

    assert client.get(url, headers=me).json() == body  # no secret on a read
    assert client.get(f"{prefix}/webhooks/", headers=me).json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [body],
    }

    put = client.put(url, headers=me, json={"events": ["thread.updated"], "is_active": "false"})
    assert put.status_code == 200
    assert put.json()["events"] == ["thread.updated"] and put.json()["is_active"] is False
    assert put.json()["url"] == body["url"]
    patched = client.patch(url, headers=me, json={"url": "http://hooks.example.com/b", "is_active": True})
    patched = patched.json()
    assert patched["url"] == "http://hooks.example.com/b" and patched["is_active"] is True
    assert patched["events"] == ["thread.updated"]

    rotated = client.post(f"{url}rotate-secret/", headers=me)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in ("", secret)

    deliveries = client.get(f"{url}deliveries/", headers=me)
    assert deliveries.status_code == 200
    assert deliveries.json() == {"count": 0, "next": None, "previous": None, "results": []}

    assert client.post(f"{prefix}/webhooks/", headers=me, json={"url": "x", "events": ["foo"]}).json() == {
        "url": ["Enter a valid URL."],
        "events": ['"foo" is not a valid choice.'],
    }
    create = f"{prefix}/webhooks/"
    assert client.post(create, headers=me, json={}).json() == {"url": ["This field is required."]}
    invalid = client.post(create, headers=me, json={"url": "https://a.example", "events": "nope"})
    assert invalid.status_code == 400 and invalid.json() == {"events": ['"nope" is not a valid choice.']}
    typed = client.post(
        create, headers=me, json={"url": "https://a.example", "events": {"a": 1}, "imap_server": "x"}
    )
    assert typed.status_code == 400 and "imap_server" in typed.json()
    assert client.post(
        f"{prefix}/webhooks/", headers=me, json={"url": "https://a.example", "imap_server": 999999}
    ).json() == {"imap_server": ['Invalid pk "999999" - object does not exist.']}

    for method, path in [
        ("get", url),
        ("patch", url),
        ("put", url),
        ("delete", url),
        ("get", f"{url}deliveries/"),
        ("post", f"{url}test/"),
        ("post", f"{url}rotate-secret/"),
    ]:
        body_kw = {"json": {}} if method in ("put", "patch") else {}
        response = getattr(client, method)(path, headers=other, **body_kw)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, (method, path)
    assert client.get(f"{prefix}/webhooks/", headers={}).status_code == 401
    for bad_id in ("abc", "0", "-1", str(2**31), str(2**63)):
        assert client.get(f"{prefix}/webhooks/{bad_id}/", headers=me).status_code == 404
    nul = client.post(create, headers=me, json={"url": "https://a.example/\x00", "events": ["\x00"]})
    assert nul.status_code == 400 and set(nul.json()) == {"url", "events"}

    assert client.delete(url, headers=me).status_code == 204
    assert client.get(url, headers=me).status_code == 404


def test_the_secret_is_stored_encrypted(client, auth) -> None:
    webhook_id, secret = create_webhook(client, auth, url="https://hooks.example.com/")
    row = webhook_row(webhook_id)
    assert secret not in row.secret_encrypted and secret[6:] not in row.secret_encrypted
    assert decrypt_secret(row.secret_encrypted) == secret


# --- delivery through the embedded worker to a real receiver -----------------------------------


def test_test_event_is_signed_and_delivered(client, auth, receiver) -> None:
    webhook_id, secret = create_webhook(client, auth, url=receiver.url)
    response = client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    assert response.status_code == 202
    queued = response.json()
    assert queued["event_type"] == "webhook.test" and queued["attempt"] == 1 and queued["status"] == "pending"

    [request] = receiver.wait_for(lambda got: len(got) == 1)
    assert request.path == "/hook" and request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert spec_verify(secret, request.headers, request.body)
    message = request.json
    assert set(message) == {"id", "type", "created_at", "data"}
    assert message["type"] == "webhook.test"
    assert message["id"] == request.headers["webhook-id"] == queued["event_id"]
    assert message["id"].startswith("evt_") and ISO_Z.match(message["created_at"])
    assert message["data"]["webhook"] == webhook_id

    wait_until(lambda: settled(webhook_id), what="the delivery to be recorded")
    listed = client.get(f"/api/webhooks/{webhook_id}/deliveries/", headers=auth).json()
    [attempt] = listed["results"]
    assert attempt["status"] == "success" and attempt["response_status"] == 200
    assert attempt["response_body"] == "ok" and attempt["error"] == "" and attempt["duration_ms"] >= 0
    assert attempt["event_id"] == message["id"] and attempt["next_attempt_at"] is None

    # Rotating the secret signs every later attempt with the new one.
    new_secret = client.post(f"/api/webhooks/{webhook_id}/rotate-secret/", headers=auth).json()["secret"]
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    second = receiver.wait_for(lambda got: len(got) == 2)[1]
    assert spec_verify(new_secret, second.headers, second.body)
    assert not spec_verify(secret, second.headers, second.body)


def test_sync_events_are_delivered_once_and_not_for_a_first_sync(client, mirror, receiver) -> None:
    webhook_id, secret = create_webhook(client, mirror.headers, url=receiver.url)
    mirror.deliver(make_message(subject="already there"))
    sync = f"/api/imap-servers/{mirror.server_id}/sync/"

    first = client.post(sync, headers=mirror.headers).json()
    receiver.wait_for(lambda got: any(r.json["type"] == "sync.completed" for r in got))
    wait_until(lambda: settled(webhook_id, mirror.owner_id), what="the first sync's deliveries")
    assert [r.json["type"] for r in receiver.requests] == ["sync.completed"]  # no email.received
    completed = receiver.requests[0].json["data"]
    assert completed["imap_server"] == mirror.server_id and completed["sync_run"] == first["sync_run"]
    assert completed["status"] == "success" and completed["messages_new"] == 1
    assert {"messages_updated", "messages_deleted", "duration_seconds", "error"} <= set(completed)

    mirror.deliver(make_message(subject="fresh news", to="Bob <bob@example.org>"))
    client.post(sync, headers=mirror.headers)
    receiver.wait_for(lambda got: len([r for r in got if r.json["type"] == "sync.completed"]) == 2)
    wait_until(lambda: settled(webhook_id, mirror.owner_id), what="the second sync's deliveries")
    [received] = receiver.of_type("email.received")
    assert spec_verify(secret, received.headers, received.body)
    email = mirror.emails(subject="fresh news")[0]
    data = received.json["data"]
    assert data["id"] == email.id and data["subject"] == "fresh news"
    assert data["imap_server"] == mirror.server_id
    assert data["message_id"] == email.message_id and data["thread_id"] == email.thread_id
    assert data["sender"] == "alice@example.com" and data["recipient"] == "bob@example.org"
    assert data["folder"] == "INBOX" and data["thread_count"] == 1 and ISO_Z.match(data["date"])
    # The receiver can read what the event names: it was committed before the event was sent.
    detail = client.get(f"/api/emails/{data['id']}/", headers=mirror.headers)
    assert detail.status_code == 200 and detail.json()["subject"] == "fresh news"

    client.post(sync, headers=mirror.headers)
    receiver.wait_for(lambda got: len([r for r in got if r.json["type"] == "sync.completed"]) == 3)
    wait_until(lambda: settled(webhook_id, mirror.owner_id), what="the re-sync's deliveries")
    assert len(receiver.of_type("email.received")) == 1  # never again on a re-sync
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 4
    assert all(spec_verify(secret, r.headers, r.body) for r in receiver.requests)


def test_thread_updated_carries_the_added_email_ids(client, mirror, receiver) -> None:
    webhook_id, secret = create_webhook(client, mirror.headers, url=receiver.url, events=["thread.updated"])
    root = make_message(subject="plan", message_id="<plan@example.com>")
    mirror.deliver(root)
    client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)
    mirror.deliver(
        make_message(
            subject="Re: plan",
            message_id="<reply@example.com>",
            in_reply_to="<plan@example.com>",
            references=["<plan@example.com>"],
        )
    )
    client.post(f"/api/imap-servers/{mirror.server_id}/sync/", headers=mirror.headers)

    [update] = receiver.wait_for(lambda got: len(got) >= 1)
    wait_until(lambda: settled(webhook_id, mirror.owner_id), what="deliveries")
    assert len(receiver.requests) == 1  # only the subscribed type
    reply = mirror.emails(subject="Re: plan")[0]
    assert update.json["type"] == "thread.updated" and spec_verify(secret, update.headers, update.body)
    data = update.json["data"]
    assert data["thread_id"] == reply.thread_id and data["thread_count"] == 2
    assert data["email_ids"] == [reply.id] and data["imap_server"] == mirror.server_id


def test_retries_until_the_receiver_recovers(client, auth, receiver) -> None:
    webhook_id, secret = create_webhook(client, auth, url=receiver.url)
    receiver.fail_next(500, times=2, body=b"x" * 5000)
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)

    got = receiver.wait_for(lambda got: len(got) == 3)
    assert [r.answered for r in got] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in got}) == 1  # one event id across retries
    assert all(spec_verify(secret, r.headers, r.body) for r in got)
    assert len({r.body for r in got}) == 1
    wait_until(lambda: settled(webhook_id), what="the attempts to be recorded")
    attempts = deliveries_of(webhook_id)
    assert [(d.attempt, d.status, d.response_status) for d in attempts] == [
        (1, "retrying", 500),
        (2, "retrying", 500),
        (3, "success", 200),
    ]
    assert len(attempts[0].response_body) == 2048  # the first 2 KB only
    assert webhook_row(webhook_id).failing_since is None  # the success cleared it

    # The receiver goes away entirely (connection refused), then comes back on the same port.
    receiver.stop()
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    wait_until(
        lambda: len([d for d in deliveries_of(webhook_id) if "connection error" in d.error]) >= 2,
        what="attempts against the stopped receiver",
    )
    assert webhook_row(webhook_id).failing_since is not None
    receiver.start()
    got = receiver.wait_for(lambda got: len(got) == 4)
    wait_until(lambda: settled(webhook_id), what="the retry to succeed")
    assert got[3].json["type"] == "webhook.test" and deliveries_of(webhook_id)[-1].status == "success"
    assert webhook_row(webhook_id).failing_since is None


@pytest.mark.parametrize("status", [400, 410])
def test_client_errors_are_final(client, auth, receiver, status) -> None:
    webhook_id, _ = create_webhook(client, auth, url=receiver.url)
    receiver.fail_next(status, times=3)
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    receiver.wait_for(lambda got: len(got) == 1)
    wait_until(lambda: settled(webhook_id), what="the attempt to be recorded")
    [attempt] = deliveries_of(webhook_id)
    assert (attempt.status, attempt.response_status, attempt.next_attempt_at) == ("failed", status, None)
    assert len(receiver.requests) == 1
    assert webhook_row(webhook_id).failing_since is not None and webhook_row(webhook_id).is_active


def test_429_retry_after_is_honoured(client, auth, receiver) -> None:
    webhook_id, _ = create_webhook(client, auth, url=receiver.url)
    receiver.fail_next(429, headers={"Retry-After": "1"})
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    first, second = receiver.wait_for(lambda got: len(got) == 2)
    assert (first.answered, second.answered) == (429, 200)
    assert second.at - first.at >= 1.0  # not before the receiver asked (the backoff alone is 0.05 s)
    wait_until(lambda: settled(webhook_id), what="the attempts to be recorded")
    retried, done = deliveries_of(webhook_id)
    assert (retried.status, retried.response_status, done.status) == ("retrying", 429, "success")


def test_private_addresses_are_refused_unless_allowed(client, auth, receiver, monkeypatch) -> None:
    monkeypatch.setattr(settings, "webhook_allow_private", False)
    webhook_id, _ = create_webhook(client, auth, url=receiver.url)
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    wait_until(lambda: deliveries_of(webhook_id)[0].status == "failed", what="the refusal")
    [attempt] = deliveries_of(webhook_id)
    assert "address refused" in attempt.error and "loopback" in attempt.error
    assert attempt.response_status is None and receiver.requests == []


def test_an_endpoint_failing_for_a_day_is_disabled(client, auth, receiver) -> None:
    webhook_id, _ = create_webhook(client, auth, url=receiver.url)
    with session_scope() as session:
        row = session.get(Webhook, webhook_id)
        row.failing_since = datetime.now(UTC) - timedelta(hours=25)
        session.add(row)
    receiver.fail_next(503)
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    receiver.wait_for(lambda got: len(got) == 1)
    wait_until(lambda: settled(webhook_id), what="the attempt to be recorded")
    [attempt] = deliveries_of(webhook_id)
    assert attempt.status == "failed" and attempt.response_status == 503

    shown = client.get(f"/api/webhooks/{webhook_id}/", headers=auth).json()
    assert shown["is_active"] is False and shown["disabled_reason"].startswith("Disabled automatically")
    assert "HTTP 503" in shown["disabled_reason"] and ISO_Z.match(shown["failing_since"])
    refused = client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    assert refused.status_code == 400 and "is_active" in refused.json()

    revived = client.patch(f"/api/webhooks/{webhook_id}/", headers=auth, json={"is_active": True}).json()
    assert (revived["is_active"], revived["disabled_reason"], revived["failing_since"]) == (True, "", None)
    assert client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth).status_code == 202
    assert receiver.wait_for(lambda got: len(got) == 2)[1].answered == 200
    wait_until(lambda: settled(webhook_id), what="the test after re-activation")
    assert webhook_row(webhook_id).failing_since is None


def test_redeliver_makes_a_new_attempt_of_the_same_event(client, auth, receiver) -> None:
    webhook_id, secret = create_webhook(client, auth, url=receiver.url)
    client.post(f"/api/webhooks/{webhook_id}/test/", headers=auth)
    receiver.wait_for(lambda got: len(got) == 1)
    wait_until(lambda: settled(webhook_id), what="the first delivery")
    [first] = deliveries_of(webhook_id)

    redeliver = "mutation($id: ID!) { redeliver(deliveryId: $id) { id eventId attempt status } }"
    redone = gql(client, auth, redeliver, id=str(first.id))["data"]["redeliver"]
    assert redone["eventId"] == first.event_id and redone["attempt"] == 2 and redone["status"] == "PENDING"
    got = receiver.wait_for(lambda got: len(got) == 2)
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"] == first.event_id
    assert spec_verify(secret, got[1].headers, got[1].body)
    wait_until(lambda: settled(webhook_id), what="the redelivery")
    listed = gql(client, auth, DELIVERIES, id=str(webhook_id))["data"]["webhookDeliveries"]
    assert listed["count"] == 2
    assert [(d["attempt"], d["status"]) for d in listed["results"]] == [(2, "SUCCESS"), (1, "SUCCESS")]


# --- the outbox relay: matching, concurrency, crashes ------------------------------------------


def _server(owner_id: int, name: str) -> int:
    with session_scope() as session:
        data = validate_server({"name": name, "host": "imap.example.com", "username": "u", "password": "p"})
        return crud_servers.create_server(session, owner_id=owner_id, data=data).id


def _webhook(owner_id: int, **data) -> int:
    with session_scope() as session:
        clean = validate_webhook({"url": "http://127.0.0.1:9/hook", **data}, creating=True)
        return crud_webhooks.create_webhook(session, owner_id=owner_id, data=clean, secret=new_secret()).id


def _drop_webhooks(*owner_ids: int) -> None:
    """Delete these owners' webhooks (and their never-sent deliveries), so no later test sends them."""
    with session_scope() as session:
        for hook in session.exec(select(Webhook).where(col(Webhook.owner_id).in_(owner_ids))):
            session.delete(hook)


def _events(owner_id: int, server_id: int | None, types: list[str]) -> None:
    with session_scope() as session:
        for kind in types:
            crud_events.record_event(
                session, owner_id=owner_id, server_id=server_id, type=kind, data={"n": 1}
            )


def test_the_relay_matches_type_server_owner_and_activity(make_user) -> None:
    me, other = owner_id_of(make_user()[2]), owner_id_of(make_user()[2])
    mine, second = _server(me, "a"), _server(me, "b")
    everything = _webhook(me)
    only_sync = _webhook(me, events=["sync.completed"])
    only_second = _webhook(me, imap_server=second)
    inactive = _webhook(me, is_active=False)
    strangers = _webhook(other)
    relay_events(enqueue=lambda _id: None)  # anything older is not ours to look at
    _events(me, mine, ["email.received", "thread.updated", "sync.completed"])

    enqueued: list[int] = []
    ids = relay_events(enqueue=enqueued.append)
    assert ids == enqueued and len(ids) == 4
    kinds = {
        hook: [d.event_type for d in deliveries_of(hook)]
        for hook in (everything, only_sync, only_second, inactive, strangers)
    }
    assert kinds == {
        everything: ["email.received", "thread.updated", "sync.completed"],
        only_sync: ["sync.completed"],
        only_second: [],
        inactive: [],
        strangers: [],
    }
    assert relay_events(enqueue=enqueued.append) == []  # each event is relayed once
    _drop_webhooks(me, other)


def test_concurrent_relays_claim_each_event_once(make_user) -> None:
    owner = owner_id_of(make_user()[2])
    hook = _webhook(owner)
    create_pending_deliveries()
    _events(owner, None, ["sync.completed"] * 60)
    errors: list[BaseException] = []

    def relay() -> None:
        try:
            while create_pending_deliveries(limit=7)[0]:
                pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    deliveries = deliveries_of(hook)
    assert len(deliveries) == 60 and len({d.event_id for d in deliveries}) == 60
    _drop_webhooks(owner)


def test_a_relay_killed_between_commit_and_enqueue_loses_nothing(client, mirror, receiver) -> None:
    webhook_id, secret = create_webhook(client, mirror.headers, url=receiver.url)
    mirror.deliver(make_message(subject="before"))
    mirror.sync()
    mirror.deliver(make_message(subject="after"))
    mirror.sync()  # in the foreground: nothing is relayed yet
    assert receiver.requests == [] and deliveries_of(webhook_id) == []

    # The relay commits the deliveries and dies before it enqueues them.
    create_pending_deliveries()
    pending = deliveries_of(webhook_id)
    assert sorted(d.event_type for d in pending) == ["email.received", "sync.completed", "sync.completed"]
    assert {d.status for d in pending} == {"pending"}
    assert relay_events(enqueue=enqueue_delivery) == []  # another relay run does not duplicate them

    # The scheduler's re-enqueue of overdue deliveries picks them up (grace 0: no need to wait).
    assert {d.id for d in pending} <= set(requeue_overdue(enqueue=enqueue_delivery, grace_seconds=0))
    receiver.wait_for(lambda got: len(got) == 3)
    wait_until(lambda: settled(webhook_id, mirror.owner_id), what="the recovered deliveries")
    assert not {d.id for d in pending} & set(requeue_overdue(enqueue=enqueue_delivery, grace_seconds=0))
    assert not {d.id for d in pending} & set(relay_events(enqueue=enqueue_delivery))
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(ids) == sorted(d.event_id for d in pending) and len(set(ids)) == 3  # exactly once each
    assert all(spec_verify(secret, r.headers, r.body) for r in receiver.requests)
    assert [r.json["data"]["subject"] for r in receiver.of_type("email.received")] == ["after"]


def test_the_scheduler_tick_relays_events_of_a_foreground_sync(client, mirror, receiver) -> None:
    webhook_id, secret = create_webhook(client, mirror.headers, url=receiver.url, events=["sync.completed"])
    run = mirror.sync()  # as `imap2api sync` runs it: no actor, so nobody has relayed its events yet
    assert deliveries_of(webhook_id) == []
    webhook_tick()
    [request] = receiver.wait_for(lambda got: len(got) == 1)
    assert request.json["data"]["sync_run"] == run.id and spec_verify(secret, request.headers, request.body)
    wait_until(lambda: settled(webhook_id, mirror.owner_id), what="the delivery to be recorded")


def test_a_worker_killed_mid_send_is_taken_over_after_its_lease(client, auth, receiver) -> None:
    owner = owner_id_of(auth["Authorization"].split()[1])
    webhook_id, _ = create_webhook(client, auth, url=receiver.url)
    with session_scope() as session:
        delivery_id = crud_webhooks.create_test_delivery(session, owner_id=owner, webhook_id=webhook_id).id
    with session_scope() as session:  # a worker takes it, then dies before recording anything
        assert crud_webhooks.claim_delivery(session, delivery_id=delivery_id, lease_seconds=30) is not None
    assert deliver(delivery_id) is None  # a duplicate message while the lease holds does nothing
    assert delivery_id not in requeue_overdue(enqueue=enqueue_delivery, grace_seconds=0)
    with session_scope() as session:  # ... time passes: the lease runs out
        session.get(WebhookDelivery, delivery_id).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert delivery_id in requeue_overdue(enqueue=enqueue_delivery)
    receiver.wait_for(lambda got: len(got) == 1)
    wait_until(lambda: settled(webhook_id), what="the taken-over delivery")
    assert [d.status for d in deliveries_of(webhook_id)] == ["success"] and len(receiver.requests) == 1


def test_the_payload_is_the_stored_event_as_json() -> None:
    event = Event(
        id="evt_1",
        owner_id=1,
        type="sync.completed",
        payload=json.dumps({"status": "success"}),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert json.loads(event_message(event)) == {
        "id": "evt_1",
        "type": "sync.completed",
        "created_at": "2026-01-02T03:04:05Z",
        "data": {"status": "success"},
    }
