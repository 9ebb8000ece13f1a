"""Attacks through IMAP server settings, against the real Dovecot, on SQLite and PostgreSQL.

A stored password is never sent to a new host, port or TLS setting without being entered again (REST,
GraphQL and the admin); no credential byte can end the LOGIN command; odd but valid passwords log in;
a non-IMAP service's banner is never echoed into an error; STARTTLS is required unless clear text is
chosen explicitly (tls_mode "none"), proven with a Dovecot that offers no STARTTLS.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from sqlmodel import select

from imap2api.db import session_scope
from imap2api.models import ImapServer
from imap2api.security import encrypt_secret
from imap2api.validation import PASSWORD_AGAIN
from tests.support.banner import BannerServer
from tests.support.dovecot import DovecotServer, find_dovecot
from tests.support.messages import make_message
from tests.test_admin import Admin, server_form, user_id

SSH_BANNER = b"SSH-2.0-OpenSSH_9.2 secret-banner\r\n"
AGAIN = PASSWORD_AGAIN


@pytest.fixture(scope="module")
def plain_dovecot() -> Iterator:
    """A second real Dovecot with TLS off: its CAPABILITY has no STARTTLS (as if a MITM stripped it)."""
    if find_dovecot() is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("dovecot is not installed (required when CI=true)", pytrace=False)
        pytest.skip("dovecot is not installed")
    with DovecotServer(tls=False) as server:
        yield server


def create(client, auth, **fields):  # noqa: ANN001, ANN003, ANN201
    """POST /api/imap-servers/ with a valid body and ``fields`` on top."""
    body = {"name": "Work", "host": "127.0.0.1", "port": 143, "username": "u", "password": "p", **fields}
    return client.post("/api/imap-servers/", json=body, headers=auth)


def sync(client, auth, server_id: int):  # noqa: ANN001, ANN201
    """A waited sync through REST."""
    return client.post(f"/api/imap-servers/{server_id}/sync/", headers=auth)


def stored(server_id: int):  # noqa: ANN201
    """The server row as stored."""
    with session_scope() as session:
        return session.get(ImapServer, server_id)


# --- 1. a stored password only goes where it was given for ----------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"host": "127.0.0.1", "port": "ATTACKER"},
        {"port": "ATTACKER"},
        {"use_ssl": True},
        {"tls_mode": "none"},
        {"tls_mode": "ssl"},
        {"host": "localhost"},
    ],
)
def test_rest_refuses_a_new_destination_without_the_password(client, auth, dovecot, user, change) -> None:  # noqa: ANN001
    dovecot.add_message(user, "INBOX", make_message(subject="mine"))
    server = create(
        client, auth, host=dovecot.host, port=dovecot.port, username=user, password="secret", use_ssl=False
    ).json()
    with BannerServer(b"* OK IMAP4rev1 attacker ready\r\n") as attacker:
        body = {name: attacker.port if value == "ATTACKER" else value for name, value in change.items()}
        refused = client.patch(f"/api/imap-servers/{server['id']}/", json=body, headers=auth)
        assert refused.status_code == 400
        assert refused.json() == {"password": [AGAIN]}
        assert client.get(f"/api/imap-servers/{server['id']}/", headers=auth).json() == server
        # The sync still logs in to the server the password was given for, and nowhere else.
        assert sync(client, auth, server["id"]).json()["messages_new"] == 1
    assert attacker.connections == 0


def test_rest_accepts_unchanged_values_and_a_new_destination_with_its_password(
    client, auth, dovecot, user
) -> None:  # noqa: ANN001
    server = create(
        client, auth, host=dovecot.host, port=dovecot.port, username=user, password="secret", use_ssl=False
    ).json()
    url = f"/api/imap-servers/{server['id']}/"
    same = client.patch(
        url,
        json={
            "host": f" {dovecot.host} ",
            "port": dovecot.port,
            "use_ssl": False,
            "tls_mode": "starttls",
            "name": "Renamed",
        },
        headers=auth,
    )
    assert same.status_code == 200 and same.json()["name"] == "Renamed"
    moved = client.patch(
        url, json={"port": dovecot.ssl_port, "tls_mode": "ssl", "password": "secret"}, headers=auth
    )
    assert moved.status_code == 200
    assert (moved.json()["port"], moved.json()["use_ssl"]) == (dovecot.ssl_port, True)
    assert sync(client, auth, server["id"]).status_code == 200


def test_graphql_refuses_a_new_host_without_the_password(client, auth, dovecot, user) -> None:  # noqa: ANN001
    server = create(
        client, auth, host=dovecot.host, port=dovecot.port, username=user, password="secret", use_ssl=False
    ).json()

    def update(selection: str = "host port useSsl", **fields):  # noqa: ANN003, ANN202
        mutation = f"""mutation($id: ID!, $input: ImapServerInput!) {{
          updateImapServer(id: $id, input: $input) {{ {selection} }} }}"""
        variables = {"id": str(server["id"]), "input": fields}
        return client.post("/graphql", json={"query": mutation, "variables": variables}, headers=auth).json()

    refused = update(host="evil.example", port=143)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"] == {"code": "VALIDATION_ERROR", "fields": {"password": [AGAIN]}}
    assert update(useSsl=True)["errors"][0]["extensions"]["fields"] == {"password": [AGAIN]}
    assert update("tlsMode", tlsMode="NONE")["errors"][0]["extensions"]["fields"] == {"password": [AGAIN]}
    assert stored(server["id"]).host == dovecot.host
    assert update("host port tlsMode", host="localhost", password="secret")["data"]["updateImapServer"] == {
        "host": "localhost",
        "port": dovecot.port,
        "tlsMode": "STARTTLS",
    }


def test_the_admin_refuses_a_new_host_without_the_password(client, make_user, dovecot, user) -> None:  # noqa: ANN001
    username, password, _ = make_user(admin=True)
    admin = Admin(client, username, password)
    owner, _, _ = make_user()
    owner_id = user_id(owner)
    assert admin.post("/admin/imap-server/create", server_form(owner_id, dovecot, user)).status_code == 302
    with session_scope() as session:
        server_id = session.exec(select(ImapServer.id).where(ImapServer.owner_id == owner_id)).one()
    for change in ({"host": "evil.example"}, {"port": "2525"}, {"tls_mode": "none"}):
        refused = admin.post(
            f"/admin/imap-server/edit/{server_id}",
            server_form(owner_id, dovecot, user, password="", **change),
        )
        assert refused.status_code == 400 and AGAIN in refused.text
        row = stored(server_id)
        assert (row.host, row.port, row.tls_mode) == (dovecot.host, dovecot.port, "starttls")
    moved = admin.post(
        f"/admin/imap-server/edit/{server_id}",
        server_form(owner_id, dovecot, user, port=str(dovecot.ssl_port), tls_mode="ssl"),
    )
    assert moved.status_code == 302
    row = stored(server_id)
    assert (row.port, row.tls_mode, row.use_ssl) == (dovecot.ssl_port, "ssl", True)


# --- 2. credentials cannot break out of LOGIN --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "secret\r\nX1 NOOP"),
        ("password", "secret\nX1 NOOP"),
        ("password", "tab\there"),
        ("username", "alice\r\nX1 NOOP"),
        ("username", "alice\x7f"),
        ("host", "imap.example.com\r\nX"),
        ("name", "Work\x1b[31m"),
        ("name", "Wo\u0085rk"),
    ],
)
def test_control_characters_are_refused(client, auth, field, value) -> None:  # noqa: ANN001
    response = create(client, auth, **{field: value})
    assert response.status_code == 400
    assert response.json() == {field: ["Control characters (such as line breaks) are not allowed."]}
    server = create(client, auth).json()
    patched = client.patch(
        f"/api/imap-servers/{server['id']}/", json={"password": "p", field: value}, headers=auth
    )
    assert patched.status_code == 400 and field in patched.json()


@pytest.mark.parametrize(
    "password",
    ['say "hi"', "back\\slash\\", "  spaces inside and around  ", "pässwörd €", '\\"{5}', "NIL", "{3}"],
)
def test_unusual_passwords_log_in(client, auth, dovecot, password) -> None:  # noqa: ANN001
    mail_user = dovecot.add_user(password=password)
    dovecot.add_message(mail_user, "INBOX", make_message(subject="logged in"))
    for tls in ({"use_ssl": False, "port": dovecot.port}, {"use_ssl": True, "port": dovecot.ssl_port}):
        server = create(client, auth, host=dovecot.host, username=mail_user, password=password, **tls)
        assert server.status_code == 201
        result = sync(client, auth, server.json()["id"])
        assert result.status_code == 200, result.json()
        assert result.json()["messages_new"] == 1


def test_a_stored_password_with_a_line_break_is_never_sent(mirror) -> None:  # noqa: ANN001
    # Written before validation refused control characters.
    with session_scope() as session:
        session.get(ImapServer, mirror.server_id).password_encrypted = encrypt_secret("secret\r\nX1 NOOP")
    run = mirror.sync()
    assert (run.status, run.error_code) == ("error", "IMAP_CREDENTIALS_INVALID")
    assert "X1 NOOP" not in run.error and "line break" in run.error
    mirror.configure(username=f"{mirror.mail_user}\nX2 NOOP", password="secret")
    run = mirror.sync()
    assert (run.status, run.error_code) == ("error", "IMAP_CREDENTIALS_INVALID")


def test_debug_logs_never_show_the_password(mirror, caplog) -> None:  # noqa: ANN001
    for password in ("quoted-secret-4711", "literal-secret-ä-4711"):
        mail_user = mirror.dovecot.add_user(password=password)
        mirror.configure(username=mail_user, password=password)
        with caplog.at_level(logging.DEBUG, logger="imapclient"):
            assert mirror.sync().status == "success"
        assert " LOGIN " not in caplog.text and "secret-" not in caplog.text
        assert "> " in caplog.text  # imapclient did log the session: only the credentials were left out


# --- 3. a non-IMAP service is not echoed ----------------------------------------------------------


@pytest.mark.parametrize(
    "banner",
    [SSH_BANNER, b"* OK almost IMAP\r\n" + SSH_BANNER, b"* BYE " + SSH_BANNER],
    ids=["ssh", "after-greeting", "bye"],
)
def test_a_banner_of_another_service_is_not_echoed(client, mirror, banner) -> None:  # noqa: ANN001
    with BannerServer(banner) as internal:
        mirror.configure(host=internal.host, port=internal.port)
        response = sync(client, mirror.headers, mirror.server_id)
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "IMAP_PROTOCOL_ERROR"
    assert "did not answer like an IMAP server" in body["message"]
    assert f"{internal.host}:{internal.port}" in body["message"]
    server = client.get(f"/api/imap-servers/{mirror.server_id}/", headers=mirror.headers).json()
    completed = mirror.events("sync.completed")[-1]
    for text in (body["message"], server["last_error"], completed["error"]):
        assert "secret-banner" not in text and "SSH-2.0" not in text


# --- 4. TLS mode ----------------------------------------------------------------------------------


def test_starttls_is_required_unless_clear_text_is_chosen(client, auth, plain_dovecot) -> None:  # noqa: ANN001
    mail_user = plain_dovecot.add_user(password="secret")
    plain_dovecot.add_message(mail_user, "INBOX", make_message(subject="clear"))
    server = create(
        client,
        auth,
        host=plain_dovecot.host,
        port=plain_dovecot.port,
        username=mail_user,
        password="secret",
        use_ssl=False,
    ).json()
    refused = sync(client, auth, server["id"])
    assert refused.status_code == 502 and refused.json()["code"] == "IMAP_TLS_REQUIRED"
    assert 'tls_mode "none"' in refused.json()["message"]
    assert server["tls_mode"] == "starttls"
    # Only an explicit choice (with the password again) sends it in clear text.
    chosen = client.patch(
        f"/api/imap-servers/{server['id']}/", json={"tls_mode": "none", "password": "secret"}, headers=auth
    )
    assert chosen.status_code == 200
    assert (chosen.json()["tls_mode"], chosen.json()["use_ssl"]) == ("none", False)
    assert sync(client, auth, server["id"]).json()["messages_new"] == 1
    # use_ssl=false says nothing against "none": it stays, and needs no password.
    again = client.patch(f"/api/imap-servers/{server['id']}/", json={"use_ssl": False}, headers=auth)
    assert again.status_code == 200 and again.json()["tls_mode"] == "none"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("ssl", True)),
        ({"use_ssl": True}, ("ssl", True)),
        ({"use_ssl": False}, ("starttls", False)),
        ({"tls_mode": "starttls"}, ("starttls", False)),
        ({"tls_mode": "none"}, ("none", False)),
        ({"tls_mode": "ssl", "use_ssl": "true"}, ("ssl", True)),
        ({"tls_mode": "none", "use_ssl": False}, ("none", False)),
    ],
)
def test_tls_mode_and_use_ssl(client, auth, fields, expected) -> None:  # noqa: ANN001
    body = create(client, auth, **fields).json()
    assert (body["tls_mode"], body["use_ssl"]) == expected
    row = stored(body["id"])
    assert (row.tls_mode, row.use_ssl) == expected


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"tls_mode": "starttls", "use_ssl": True},
            {"tls_mode": ['tls_mode "starttls" contradicts use_ssl=true: send tls_mode alone.']},
        ),
        (
            {"tls_mode": "ssl", "use_ssl": False},
            {"tls_mode": ['tls_mode "ssl" contradicts use_ssl=false: send tls_mode alone.']},
        ),
        ({"tls_mode": "tls"}, {"tls_mode": ['"tls" is not a valid choice.']}),
        ({"tls_mode": 3}, {"tls_mode": ['"3" is not a valid choice.']}),
    ],
)
def test_tls_mode_errors(client, auth, fields, errors) -> None:  # noqa: ANN001
    response = create(client, auth, **fields)
    assert response.status_code == 400 and response.json() == errors
