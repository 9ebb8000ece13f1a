"""The admin's IMAP server pages: the owner is chosen on create only, the form edits every API field
(the CA certificate, the schedule), "Test connection" logs in with the stored credentials, and a running
sync's progress shows as it goes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html

import pytest
from sqlmodel import select

from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.db import session_scope
from imap2api.models import ImapServer, SyncRun
from imap2api.security import encrypt_secret
from imap2api.sync.engine import run_sync
from tests.support.messages import make_message
from tests.test_admin import Admin, logged_in, row, server_form, user_id


@pytest.fixture()
def admin(client, make_user) -> Admin:  # noqa: ANN001
    """An admin user logged in to the admin interface."""
    username, password, _ = make_user(admin=True)
    session = Admin(client, username, password)
    assert logged_in(session.get("/admin/user/list"))
    return session


def created_server(admin: Admin, make_user, dovecot, mail_user: str, **fields) -> ImapServer:  # noqa: ANN001
    """A server created through the admin's form."""
    owner_id = user_id(make_user()[0])
    response = admin.post("/admin/imap-server/create", server_form(owner_id, dovecot, mail_user, **fields))
    assert response.status_code == 302, response.text
    with session_scope() as session:
        return session.exec(select(ImapServer).where(ImapServer.owner_id == owner_id)).one()


def test_the_owner_is_chosen_on_create_and_not_shown_on_edit(admin: Admin, make_user, dovecot, user) -> None:  # noqa: ANN001
    assert 'name="owner_id"' in admin.get("/admin/imap-server/create").text
    server = created_server(admin, make_user, dovecot, user)
    edit = admin.get(f"/admin/imap-server/edit/{server.id}")
    assert edit.status_code == 200 and 'name="owner_id"' not in edit.text
    # A post naming another owner changes nothing of the owner.
    other = user_id(make_user()[0])
    saved = admin.post(
        f"/admin/imap-server/edit/{server.id}",
        server_form(other, dovecot, user, name="Renamed", password=""),
    )
    assert saved.status_code == 302
    assert row(ImapServer, server.id).owner_id == server.owner_id
    assert row(ImapServer, server.id).name == "Renamed"


def test_the_form_edits_the_ca_certificate_and_the_schedule(admin: Admin, make_user, dovecot, user) -> None:  # noqa: ANN001
    pem = dovecot.ca_cert_path.read_text().replace("\r\n", "\n")
    server = created_server(
        admin, make_user, dovecot, user, tls_ca_cert=pem.replace("\n", "\r\n"), sync_interval_seconds="900"
    )
    assert server.tls_ca_cert.strip() == pem.strip()  # a browser's CRLF lines are stored as the API's
    assert "\r" not in server.tls_ca_cert
    assert server.sync_interval_seconds == 900 and server.is_active is True
    edit = admin.get(f"/admin/imap-server/edit/{server.id}").text
    assert 'name="tls_ca_cert"' in edit and pem.splitlines()[1] in edit
    assert 'name="sync_interval_seconds"' in edit and 'name="is_active"' in edit
    # The same PEM posted back with a browser's CRLF lines is no change (no password asked again).
    same = server_form(
        server.owner_id, dovecot, user, password="", tls_ca_cert=server.tls_ca_cert.replace("\n", "\r\n")
    )
    assert admin.post(f"/admin/imap-server/edit/{server.id}", same).status_code == 302
    # Another certificate is another destination: the password comes along (validation's rule).
    form = server_form(server.owner_id, dovecot, user, tls_ca_cert="", sync_interval_seconds="")
    del form["is_active"]  # an unticked box is absent from the post
    assert admin.post(f"/admin/imap-server/edit/{server.id}", form).status_code == 302
    changed = row(ImapServer, server.id)
    assert changed.tls_ca_cert == "" and changed.sync_interval_seconds is None and changed.is_active is False
    too_often = admin.post(
        f"/admin/imap-server/edit/{server.id}",
        server_form(server.owner_id, dovecot, user, password="", sync_interval_seconds="10"),
    )
    assert too_often.status_code == 400 and row(ImapServer, server.id).sync_interval_seconds is None


def test_test_connection_flashes_the_folders_or_the_error(admin: Admin, make_user, dovecot, user) -> None:  # noqa: ANN001
    server = created_server(admin, make_user, dovecot, user)
    details = admin.get(f"/admin/imap-server/details/{server.id}")
    assert "action/test-connection" in details.text
    tested = admin.get(f"/admin/imap-server/action/test-connection?pks={server.id}")
    assert tested.status_code == 302 and tested.headers["location"].endswith(f"/details/{server.id}")
    page = html.unescape(admin.get(f"/admin/imap-server/details/{server.id}").text)
    assert "Connection OK" in page and "INBOX" in page and "Sent" in page
    with session_scope() as session:
        session.get(ImapServer, server.id).password_encrypted = encrypt_secret("wrong")
    admin.get(f"/admin/imap-server/action/test-connection?pks={server.id}")
    page = html.unescape(admin.get(f"/admin/imap-server/details/{server.id}").text)
    assert "Connection failed [IMAP_AUTH_FAILED]" in page
    with session_scope() as session:
        assert session.exec(select(SyncRun).where(SyncRun.imap_server_id == server.id)).first() is None
        assert session.get(ImapServer, server.id).last_error == ""  # a test is no sync: nothing recorded


def test_a_running_sync_shows_its_progress_as_it_goes(admin: Admin, mirror, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(settings, "sync_batch_messages", 1)
    for number in range(4):
        mirror.deliver(make_message(subject=f"Message {number}"))
    with session_scope() as session:
        server = session.get(ImapServer, mirror.server_id)
        run, _ = crud_runs.start_run(session, server=server, trigger="manual")
    seen: list[tuple[str, str]] = []

    def look(done: int, total: int) -> None:
        if 0 < done < total:
            listed = admin.get(f"/admin/sync-run/list?imap_server_id={mirror.server_id}").text
            details = admin.get(f"/admin/sync-run/details/{run.id}").text
            seen.append((f"{done}/{total}", listed + details))

    assert run_sync(run.id, on_progress=look).status == "success"
    assert seen
    for progress, page in seen:
        assert progress in page, progress
    final = admin.get(f"/admin/sync-run/list?imap_server_id={mirror.server_id}").text
    assert "4/4 (100 %)" in final


def test_a_run_still_counting_says_so(admin: Admin, mirror) -> None:  # noqa: ANN001
    with session_scope() as session:
        server = session.get(ImapServer, mirror.server_id)
        run, _ = crud_runs.start_run(session, server=server, trigger="manual")
        crud_runs.update_run(session, run_id=run.id, status="running")
    listed = admin.get(f"/admin/sync-run/list?imap_server_id={mirror.server_id}").text
    assert "counting" in listed
