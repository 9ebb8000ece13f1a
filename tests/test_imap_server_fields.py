"""IMAP server fields that once reached the database unchecked, on SQLite and PostgreSQL.

A required field sent as null is a 400 (REST, GraphQL), never a NOT NULL failure; ``host`` must be a
hostname (internationalised ones included) or an IP address, checked when it is stored, and a bad host
stored by an older version fails its sync cleanly instead of crashing it.
"""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from imap2api.db import session_scope
from imap2api.models import ImapServer
from tests.support.messages import make_message
from tests.test_admin import Admin, server_form, user_id

SERVER = {"name": "Work", "host": "imap.example.com", "port": 993, "username": "u", "password": "p"}
NOT_A_HOST = "Enter a valid hostname or IP address, such as imap.example.com."
UPDATE = """mutation($id: ID!, $input: ImapServerInput!) {
  updateImapServer(id: $id, input: $input) { host } }"""


def created(client, auth) -> dict:  # noqa: ANN001
    """A new server through REST."""
    response = client.post("/api/imap-servers/", json=SERVER, headers=auth)
    assert response.status_code == 201
    return response.json()


def count(client, auth) -> int:  # noqa: ANN001
    """How many servers the caller has."""
    return client.get("/api/imap-servers/", headers=auth).json()["count"]


# --- required fields may not be null ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "host", "username", "password"])
@pytest.mark.parametrize("method", ["patch", "put"])
def test_null_for_a_required_field_is_a_400(client, auth, field, method) -> None:  # noqa: ANN001
    server = created(client, auth)
    url = f"/api/imap-servers/{server['id']}/"
    response = getattr(client, method)(url, json={field: None}, headers=auth)
    assert response.status_code == 400
    assert response.json() == {field: ["This field may not be null."]}
    assert client.get(url, headers=auth).json() == server


def test_null_on_create_is_not_the_same_as_missing(client, auth) -> None:  # noqa: ANN001
    response = client.post("/api/imap-servers/", json={**SERVER, "name": None, "host": None}, headers=auth)
    assert response.status_code == 400
    null = ["This field may not be null."]
    assert response.json() == {"name": null, "host": null}
    assert count(client, auth) == 0


@pytest.mark.parametrize("field", ["host", "name", "username"])
def test_graphql_null_for_a_required_field_is_a_validation_error(client, auth, field) -> None:  # noqa: ANN001
    server = created(client, auth)
    variables = {"id": str(server["id"]), "input": {field: None}}
    answer = client.post("/graphql", json={"query": UPDATE, "variables": variables}, headers=auth).json()
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"] == {
        "code": "VALIDATION_ERROR",
        "fields": {field: ["This field may not be null."]},
    }


@pytest.mark.parametrize("field", ["url", "events", "is_active"])
def test_null_for_a_webhook_field_is_a_400(client, auth, field) -> None:  # noqa: ANN001
    webhook = client.post("/api/webhooks/", json={"url": "http://127.0.0.1:9/hook"}, headers=auth).json()
    response = client.patch(f"/api/webhooks/{webhook['id']}/", json={field: None}, headers=auth)
    assert response.status_code == 400
    assert response.json() == {field: ["This field may not be null."]}


# --- host is a hostname or an IP address -------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("imap..example.com", NOT_A_HOST),
        ("imap.example.com.", NOT_A_HOST),
        (".example.com", NOT_A_HOST),
        ("mail server.example", NOT_A_HOST),
        ("-imap.example.com", NOT_A_HOST),
        ("imap-.example.com", NOT_A_HOST),
        ("a" * 64 + ".example.com", NOT_A_HOST),
        (
            ".".join(["a" * 63] * 3 + ["b" * 61, "c"]),  # 255 characters: a DNS name has at most 253
            "Ensure the hostname has no more than 253 characters in ASCII form.",
        ),
        ("☃.example", NOT_A_HOST),  # not a letter: IDNA 2008 refuses it
        ("xn--zz.example", NOT_A_HOST),  # not Punycode
        ("١٢٣.example", NOT_A_HOST),  # digits of a right-to-left script alone: the Bidi rule refuses them
        ("mail@example.com", NOT_A_HOST),
        (
            "imap.example.com/inbox",
            "Enter the hostname alone, such as imap.example.com, without a scheme (imaps://) or a path.",
        ),
        (
            "imaps://imap.example.com",
            "Enter the hostname alone, such as imap.example.com, without a scheme (imaps://) or a path.",
        ),
        ("imap.example.com:993", "Enter the hostname alone; the port goes in the port field."),
        ("[::1]:993", NOT_A_HOST),
        ("[127.0.0.1]", NOT_A_HOST),
        ("[imap.example.com]", NOT_A_HOST),
        ("127.1", NOT_A_HOST),  # the resolver would read these as IPv4 shorthands
        ("0x7f000001", NOT_A_HOST),
        ("256.1.1.1", NOT_A_HOST),
        ("fe80::1%eth 0", NOT_A_HOST),
    ],
)
def test_a_host_that_is_no_hostname_is_refused(client, auth, host, message) -> None:  # noqa: ANN001
    response = client.post("/api/imap-servers/", json={**SERVER, "host": host}, headers=auth)
    assert response.status_code == 400
    assert response.json() == {"host": [message]}
    assert count(client, auth) == 0
    server = created(client, auth)
    patched = client.patch(
        f"/api/imap-servers/{server['id']}/", json={"host": host, "password": "p"}, headers=auth
    )
    assert patched.status_code == 400 and patched.json() == {"host": [message]}


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("imap.example.com", "imap.example.com"),
        ("IMAP.Example.COM", "IMAP.Example.COM"),
        ("dovecot", "dovecot"),
        ("mail_server.internal", "mail_server.internal"),  # DNS and container names allow "_"
        ("bücher.example", "bücher.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("日本語.jp", "日本語.jp"),
        ("straße.de", "straße.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("[2001:DB8:0:0::1]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_hostnames_and_ip_addresses_are_accepted(client, auth, host, stored) -> None:  # noqa: ANN001
    response = client.post("/api/imap-servers/", json={**SERVER, "host": host}, headers=auth)
    assert response.status_code == 201, response.json()
    assert response.json()["host"] == stored


def test_graphql_and_the_admin_refuse_a_bad_host(client, auth, make_user, dovecot, user) -> None:  # noqa: ANN001
    server = created(client, auth)
    variables = {"id": str(server["id"]), "input": {"host": "imap..example.com", "password": "p"}}
    answer = client.post("/graphql", json={"query": UPDATE, "variables": variables}, headers=auth).json()
    assert answer["errors"][0]["extensions"] == {"code": "VALIDATION_ERROR", "fields": {"host": [NOT_A_HOST]}}

    username, password, _ = make_user(admin=True)
    admin = Admin(client, username, password)
    owner_id = user_id(make_user()[0])
    form = server_form(owner_id, dovecot, user, host="imap..example.com")
    refused = admin.post("/admin/imap-server/create", form)
    assert refused.status_code == 400 and NOT_A_HOST in refused.text
    with session_scope() as session:
        assert session.exec(select(ImapServer).where(ImapServer.owner_id == owner_id)).all() == []


@pytest.mark.parametrize(
    "host",
    ["imap..example.com", "mail\u0099.example", "a" * 64 + ".example", "☃.example", "imaps://x"],
)
def test_a_stored_bad_host_fails_the_sync_cleanly(mirror, caplog, host) -> None:  # noqa: ANN001
    mirror.configure(host=host)  # as an older version stored it, unchecked
    with caplog.at_level(logging.INFO):
        run = mirror.sync()
    assert (run.status, run.error_code) == ("error", "IMAP_HOST_INVALID")
    assert ascii(host) in run.error and "not a valid hostname" in run.error
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


def test_an_internationalised_host_is_sent_in_ascii_and_verified(client, mirror) -> None:  # noqa: ANN001
    # Full-width letters map to "localhost" (UTS #46), the name in the Dovecot fixture's certificate.
    mirror.deliver(make_message(subject="over an IDN"))
    url = f"/api/imap-servers/{mirror.server_id}/"
    changed = client.patch(
        url,
        json={
            "host": "ｌｏｃａｌｈｏｓｔ",
            "port": mirror.dovecot.ssl_port,
            "tls_mode": "ssl",
            "password": "secret",
        },
        headers=mirror.headers,
    )
    assert changed.status_code == 200, changed.json()
    run = mirror.sync()
    assert run.status == "success", run.error
    assert [email.subject for email in mirror.emails()] == ["over an IDN"]
