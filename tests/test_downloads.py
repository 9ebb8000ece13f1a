"""Attachments and raw messages downloaded from the real Dovecot, on SQLite and PostgreSQL: the decoded
bytes, the headers (RFC 6266 names, ETag, sandbox), in many partial FETCHes, never setting \\Seen; who
may download what; rows mirrored before sections were kept; messages the sync fetched only in part."""

from __future__ import annotations

import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from imap2api.config import settings
from imap2api.db import session_scope
from imap2api.models import Attachment
from imap2api.sync import content as sync_content
from tests.conftest import Mirror
from tests.support.imap_proxy import ImapProxy
from tests.support.messages import make_message
from tests.support.serve import add_imap_server, served
from tests.support.webhook_checks import wait_until

PDF = os.urandom(300_000)  # base64 in the message
NOTE = ("Grüße aus der Übersetzung, Zeile für Zeile.\n" * 2000).encode()


def with_notes() -> bytes:
    """A message with a binary attachment and a quoted-printable text attachment with a UTF-8 name."""
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "files", "a@example.com", "b@example.org"
    message["Message-ID"] = "<files@example.com>"
    message.set_content("see attached\n")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="Rechnung März.pdf")
    message.add_attachment(
        NOTE, maintype="text", subtype="plain", filename="notiz.txt", cte="quoted-printable"
    )
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture()
def files(mirror: Mirror) -> Mirror:
    """A mirrored message with two attachments."""
    mirror.deliver(with_notes())
    mirror.sync()
    return mirror


def attachments(client, mirror: Mirror) -> list[dict]:
    """The email's attachments as the REST detail lists them."""
    (email,) = mirror.emails()
    return client.get(f"/api/emails/{email.id}/", headers=mirror.headers).json()["attachments"]


def test_an_attachment_downloads_decoded_with_safe_headers(client, files: Mirror) -> None:
    (email,) = files.emails()
    pdf, note = attachments(client, files)
    assert (pdf["filename"], pdf["size"]) == ("Rechnung März.pdf", len(PDF))
    assert pdf["download_url"] == f"/api/emails/{email.id}/attachments/{pdf['id']}/"
    answer = client.get(pdf["download_url"], headers=files.headers)
    assert answer.status_code == 200 and answer.content == PDF
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
    )
    assert answer.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert answer.headers["x-content-type-options"] == "nosniff"
    again = client.get(
        pdf["download_url"], headers={**files.headers, "If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    text = client.get(note["download_url"] + "?inline=1", headers=files.headers)
    assert text.content == NOTE and text.headers["content-disposition"].startswith("inline;")
    with files.imap() as imap:  # downloading is reading: nothing marked \Seen
        imap.select_folder("INBOX", readonly=True)
        assert all(
            b"\\Seen" not in data[b"FLAGS"] for data in imap.fetch(imap.search(["ALL"]), ["FLAGS"]).values()
        )


def test_the_raw_message_is_the_servers_bytes(client, files: Mirror) -> None:
    (email,) = files.emails()
    shown = client.get(f"/api/emails/{email.id}/", headers=files.headers).json()
    answer = client.get(f"/api/emails/{email.id}/raw/", headers=files.headers)
    with files.imap() as imap:
        imap.select_folder("INBOX", readonly=True)
        (original,) = [data[b"BODY[]"] for data in imap.fetch(imap.search(["ALL"]), ["BODY.PEEK[]"]).values()]
    assert answer.status_code == 200 and answer.content == original
    assert answer.headers["content-type"] == "message/rfc822"
    assert answer.headers["content-disposition"].startswith(f'attachment; filename="{email.id}.eml"')
    assert "raw_url" not in shown  # REST keeps apidoc's detail; GraphQL has rawUrl
    graphql = client.post(
        "/graphql",
        json={"query": f'{{ email(id: "{email.id}") {{ rawUrl attachments {{ downloadUrl }} }} }}'},
        headers=files.headers,
    ).json()["data"]["email"]
    assert graphql["rawUrl"] == f"/api/emails/{email.id}/raw/"
    assert [a["downloadUrl"] for a in graphql["attachments"]] == [
        a["download_url"] for a in attachments(client, files)
    ]


def test_big_parts_come_in_partial_fetches(client, files: Mirror, monkeypatch) -> None:
    monkeypatch.setattr(sync_content, "CHUNK_BYTES", 64 * 1024)
    with ImapProxy(files.dovecot.host, files.dovecot.port) as proxy:
        files.configure(host=proxy.host, port=proxy.port, tls_mode="none", password="secret")
        pdf, _ = attachments(client, files)
        assert client.get(pdf["download_url"], headers=files.headers).content == PDF
        partial = [text for text in proxy.texts() if "BODY.PEEK[2]<" in text]
    assert len(partial) >= 6, partial  # 400 KB of base64 in 64 KB pieces


def test_who_may_download_what(client, files: Mirror, make_user) -> None:
    (email,) = files.emails()
    pdf, _ = attachments(client, files)
    stranger = {"Authorization": f"Token {make_user()[2]}"}
    assert client.get(pdf["download_url"], headers=stranger).status_code == 404
    assert client.get(f"/api/emails/{email.id}/raw/", headers=stranger).status_code == 404
    assert client.get(pdf["download_url"]).status_code == 401
    other = files.emails()[0].id + 1000
    assert (
        client.get(f"/api/emails/{email.id}/attachments/{other}/", headers=files.headers).status_code == 404
    )
    with files.imap() as imap:  # gone from the server: 404, not a broken stream
        imap.select_folder("INBOX")
        imap.delete_messages(imap.search(["ALL"]))
        imap.expunge()
    assert client.get(pdf["download_url"], headers=files.headers).status_code == 404


def test_rows_mirrored_before_sections_were_kept_still_download(client, files: Mirror) -> None:
    with session_scope() as session:
        session.exec(update(Attachment).values(section="", encoding=""))
    pdf, note = attachments(client, files)
    assert client.get(pdf["download_url"], headers=files.headers).content == PDF
    assert client.get(note["download_url"], headers=files.headers).content == NOTE


def test_a_message_the_sync_cut_downloads_whole(client, mirror: Mirror, monkeypatch) -> None:
    monkeypatch.setattr(settings, "sync_max_message_bytes", 50_000)
    mirror.deliver(make_message(subject="big", attachments=[("big.bin", "application/octet-stream", PDF)]))
    mirror.sync()
    (attachment,) = attachments(client, mirror)
    assert client.get(attachment["download_url"], headers=mirror.headers).content == PDF


def test_cid_references_can_point_at_their_downloads(client, mirror: Mirror) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "logo", "a@example.com", "b@example.org"
    message.set_content("plain")
    message.add_alternative(
        '<p><img src="cid:logo@example.com"> <img src="cid:unknown@x"></p>', subtype="html"
    )
    html_part = message.get_payload()[1]
    html_part.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo@example.com>")
    mirror.deliver(message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    mirror.sync()
    (email,) = mirror.emails()
    plain = client.get(f"/api/emails/{email.id}/", headers=mirror.headers).json()
    assert 'src="cid:logo@example.com"' in plain["body_html"]
    resolved = client.get(f"/api/emails/{email.id}/?cid_urls=true", headers=mirror.headers).json()
    (logo,) = resolved["attachments"]
    assert f'src="{logo["download_url"]}"' in resolved["body_html"]
    assert 'src="cid:unknown@x"' in resolved["body_html"]  # no such part: left as it was
    assert client.get(logo["download_url"], headers=mirror.headers).content == b"\x89PNG fake"
    assert client.get(f"/api/emails/{email.id}/?cid_urls=maybe", headers=mirror.headers).status_code == 400


def test_a_reader_that_leaves_ends_the_imap_connection(tmp_path: Path, dovecot) -> None:
    """Against a real `imap2api serve` (Starlette's test client reads whole answers, a socket does not),
    with an attachment larger than the socket buffers, so the answer is still being sent."""
    big = os.urandom(8_000_000)
    mail_user = dovecot.add_user()
    dovecot.add_message(
        mail_user, "INBOX", make_message(attachments=[("big.bin", "application/octet-stream", big)])
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP2API_")}
    subprocess.run(
        [sys.executable, "-m", "imap2api.cli", "createuser", "ann", "--password", "password-1"],
        env={**env, "IMAP2API_DATA_DIR": str(tmp_path / "data")},
        check=True,
        capture_output=True,
    )
    settings = {
        "imap_ca_file": str(dovecot.ca_cert_path),
        "watch_enabled": "false",
        "sync_max_message_bytes": "20000000",
    }
    with served(tmp_path, **settings) as url:
        token = httpx.post(
            f"{url}/api-token-auth/", json={"username": "ann", "password": "password-1"}
        ).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        server_id = add_imap_server(url, headers, dovecot, mail_user)
        assert (
            httpx.post(f"{url}/api/imap-servers/{server_id}/sync/", headers=headers, timeout=60).status_code
            == 200
        )
        (email,) = httpx.get(f"{url}/api/emails/", headers=headers).json()["results"]
        pdf = httpx.get(f"{url}/api/emails/{email['id']}/", headers=headers).json()["attachments"][0]

        def connections() -> int:
            return dovecot.doveadm("who", mail_user).count(mail_user)

        with httpx.stream("GET", url + pdf["download_url"], headers=headers) as answer:
            assert answer.status_code == 200
            next(answer.iter_raw(1024))  # a first piece, then the reader goes
            assert connections() == 1
        wait_until(lambda: connections() == 0, what="the download's IMAP connection to end")
        whole = httpx.get(url + pdf["download_url"], headers=headers)
        assert whole.content == big
        wait_until(lambda: connections() == 0, what="a finished download's connection to end")
    assert "Exception ignored" not in (tmp_path / "serve.log").read_text()
