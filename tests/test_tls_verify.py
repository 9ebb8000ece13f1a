"""Per-server ``tls_verify``: a server whose certificate does not verify is synced only once its
owner says so, saying so needs the password again, and every interface shows the setting."""

from __future__ import annotations

from imap2api.config import settings
from tests.support.messages import make_message


def test_an_unverifiable_certificate_fails_until_tls_verify_is_off(mirror, monkeypatch) -> None:
    # Without the fixture's CA, Dovecot's certificate is what a self-signed server presents.
    monkeypatch.setattr(settings, "imap_ca_file", None)
    mirror.deliver(make_message(subject="behind a self-signed certificate"))
    refused = mirror.sync()
    assert (refused.status, refused.error_code) == ("error", "IMAP_TLS_FAILED")
    assert mirror.emails() == []

    mirror.configure(tls_verify=False)
    assert mirror.sync().status == "success"
    assert [email.subject for email in mirror.emails()] == ["behind a self-signed certificate"]

    mirror.configure(tls_verify=True)  # back on: checked again at the next connection
    assert mirror.sync().error_code == "IMAP_TLS_FAILED"


def test_turning_verification_off_needs_the_password_and_shows_everywhere(client, mirror) -> None:
    url = f"/api/imap-servers/{mirror.server_id}/"
    assert client.get(url, headers=mirror.headers).json()["tls_verify"] is True
    refused = client.patch(url, headers=mirror.headers, json={"tls_verify": False})
    assert refused.status_code == 400 and "tls_verify" in refused.json()["password"][0]
    assert (
        client.patch(url, headers=mirror.headers, json={"tls_verify": "yes"}).status_code == 200
    )  # unchanged

    changed = client.patch(url, headers=mirror.headers, json={"tls_verify": False, "password": "secret"})
    assert changed.status_code == 200 and changed.json()["tls_verify"] is False
    query = f'{{ imapServer(id: "{mirror.server_id}") {{ tlsVerify }} }}'
    answer = client.post("/graphql", headers=mirror.headers, json={"query": query}).json()
    assert answer == {"data": {"imapServer": {"tlsVerify": False}}}
    created = client.post(
        "/api/imap-servers/",
        headers=mirror.headers,
        json={"name": "n", "host": "imap.example.com", "username": "u", "password": "p"},
    )
    assert created.status_code == 201 and created.json()["tls_verify"] is True  # the default
