"""The GraphQL websocket: the same budgets as HTTP, login at connection_init, one protocol."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from imap2api.app import create_app
from imap2api.config import settings
from tests.support.messages import make_message

PROTOCOL = ["graphql-transport-ws"]
TOKEN_AUTH = 'mutation { tokenAuth(username: "%s", password: "%s") { token } }'


@pytest.fixture()
def limited(database, monkeypatch):
    """The app with small budgets: 5 requests per user, 3 per anonymous address."""
    monkeypatch.setattr(settings, "rate_limit_user", "5/minute")
    monkeypatch.setattr(settings, "rate_limit_anon", "3/minute")
    with TestClient(create_app()) as client:
        yield client


class Socket:
    """A graphql-transport-ws client over the test client."""

    def __init__(
        self, client: TestClient, headers: dict[str, str] | None = None, payload: dict | None = None
    ) -> None:
        self._context = client.websocket_connect("/graphql", subprotocols=PROTOCOL, headers=headers or {})
        self.ws = self._context.__enter__()
        self.ws.send_json({"type": "connection_init", "payload": payload or {}})
        self.ack = self.ws.receive_json()
        self.ids = 0

    def run(self, query: str) -> dict:
        """Send one operation and return its first answer (``next`` or ``error``), then drain it."""
        self.ids += 1
        self.ws.send_json({"id": str(self.ids), "type": "subscribe", "payload": {"query": query}})
        message = self.ws.receive_json()
        if message["type"] == "next":
            assert self.ws.receive_json() == {"id": str(self.ids), "type": "complete"}
        return message

    def close(self) -> None:
        """Close the socket."""
        self._context.__exit__(None, None, None)


def _code(message: dict) -> str | None:
    errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


def test_token_guessing_over_the_socket_spends_the_address_budget(limited, make_user) -> None:
    username, password, _ = make_user(admin=True)
    socket = Socket(limited)  # the handshake spends 1 of the address's 3
    try:
        assert socket.ack == {"type": "connection_ack"}
        answers = [socket.run(TOKEN_AUTH % (username, f"guess-{n}")) for n in range(4)]
        assert [_code(answer) for answer in answers] == [
            "VALIDATION_ERROR",
            "VALIDATION_ERROR",
            "THROTTLED",
            "THROTTLED",
        ]
        # The right password is refused too once the budget is spent: guessing gains nothing.
        right = socket.run(TOKEN_AUTH % (username, password))
        assert right["type"] == "error" and _code(right) == "THROTTLED"
        wait = right["payload"][0]["extensions"]["retryAfter"]
        expected = f"Request was throttled. Expected available in {wait} seconds."
        assert right["payload"][0]["message"] == expected
    finally:
        socket.close()
    # HTTP shares the same budget: the address is throttled there as well.
    login = limited.post("/api-token-auth/", json={"username": username, "password": password})
    assert login.status_code == 429


def test_a_user_throttled_on_http_is_throttled_on_the_socket(limited, auth) -> None:
    for _ in range(4):
        assert limited.get("/api/imap-servers/", headers=auth).status_code == 200
    socket = Socket(limited, payload={"Authorization": auth["Authorization"]})
    try:
        # The handshake is anonymous (no header): the fifth request of the user is the first query.
        assert socket.run("{ me { id } }")["type"] == "next"
        answers = [socket.run("{ me { id } }") for _ in range(3)]
        assert [_code(answer) for answer in answers] == ["THROTTLED"] * 3
    finally:
        socket.close()


def test_the_socket_budget_counts_every_operation(limited, auth) -> None:
    socket = Socket(limited, headers=auth)  # the handshake carries the token: it spends 1 of 5
    try:
        answers = [socket.run("{ me { id } }") for _ in range(6)]
        assert [answer["type"] for answer in answers] == ["next"] * 4 + ["error"] * 2
    finally:
        socket.close()
    assert limited.get("/api/imap-servers/", headers=auth).status_code == 429


def test_the_handshake_itself_is_refused_past_the_budget(limited) -> None:
    for _ in range(3):
        assert limited.get("/api/emails/").status_code == 401
    with pytest.raises(WebSocketDenialResponse) as denied:
        limited.websocket_connect("/graphql", subprotocols=PROTOCOL).__enter__()
    assert denied.value.status_code == 429
    assert denied.value.json()["detail"].startswith("Request was throttled.")


def test_connection_init_token_authenticates_queries(client, make_user) -> None:
    username, _, token = make_user()
    for payload in ({"Authorization": f"Token {token}"}, {"token": token}):
        socket = Socket(client, payload=payload)
        try:
            answer = socket.run("{ me { username } }")
            assert answer["payload"] == {"data": {"me": {"username": username}}}
        finally:
            socket.close()
    anonymous = Socket(client)
    try:
        assert _code(anonymous.run("{ me { username } }")) == "UNAUTHENTICATED"
    finally:
        anonymous.close()


def test_a_wrong_connection_init_token_closes_the_socket(client) -> None:
    with client.websocket_connect("/graphql", subprotocols=PROTOCOL) as ws:
        ws.send_json({"type": "connection_init", "payload": {"token": "not-a-token"}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403


def test_the_legacy_protocol_is_refused_at_connect(client, auth) -> None:
    with (
        client.websocket_connect("/graphql", subprotocols=["graphql-ws"], headers=auth) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.send_json({"type": "connection_init", "payload": {}})
        ws.receive_json()
    assert closed.value.code == 4406


def test_queries_over_the_socket_have_the_request_time_bound(client, auth, monkeypatch) -> None:
    socket = Socket(client, headers=auth)
    try:
        monkeypatch.setattr(settings, "request_timeout_seconds", 1e-6)
        answer = socket.run("{ imapServers { count } }")
        assert answer["type"] == "error" and _code(answer) == "TIMEOUT"
        monkeypatch.setattr(settings, "request_timeout_seconds", 30.0)
        assert socket.run("{ imapServers { count } }")["payload"] == {"data": {"imapServers": {"count": 0}}}
    finally:
        socket.close()


def test_each_subscription_event_reads_fresh_data(client, mirror) -> None:
    mirror.sync()  # a first sync announces nothing: mail arriving after it does
    socket = Socket(client, payload={"token": mirror.token})
    try:
        socket.ws.send_json(
            {
                "id": "s",
                "type": "subscribe",
                "payload": {
                    "query": "subscription($s: ID!) {"
                    " emailReceived(imapServer: $s) { subject threadCount } }",
                    "variables": {"s": str(mirror.server_id)},
                },
            }
        )
        time.sleep(0.3)  # let the server register the subscription before mail arrives
        mirror.deliver(make_message(subject="first", message_id="<t1@example.com>"))
        mirror.sync()
        first = socket.ws.receive_json()["payload"]["data"]["emailReceived"]
        mirror.deliver(
            make_message(
                subject="Re: first",
                message_id="<t2@example.com>",
                in_reply_to="<t1@example.com>",
                references=["<t1@example.com>"],
            )
        )
        mirror.sync()
        second = socket.ws.receive_json()["payload"]["data"]["emailReceived"]
    finally:
        socket.close()
    # The connection's loaders would otherwise answer the thread's count cached at the first event.
    assert (first, second) == (
        {"subject": "first", "threadCount": 1},
        {"subject": "Re: first", "threadCount": 2},
    )


def test_a_deeply_nested_socket_message_closes_it_cleanly(client) -> None:
    with client.websocket_connect("/graphql", subprotocols=PROTOCOL) as ws:
        ws.send_text('{"type": "connection_init", "payload": ' + "[" * 5000 + "]" * 5000 + "}")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400
