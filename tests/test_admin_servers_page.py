"""The admin's IMAP server pages: the owner is chosen on create only, the form edits every API field
(the CA certificate, the schedule), "Test connection" logs in with the stored credentials (details page)
or with the values in the form, unsaved (within the admin's API budget), folders the last run did not
find are a warning, and a running sync's progress shows as it goes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from imap2api.app import create_app
from imap2api.config import settings
from imap2api.crud import sync_runs as crud_runs
from imap2api.crud import users as crud_users
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
    details = html.unescape(admin.get(f"/admin/sync-run/details/{run.id}").text)
    assert "not known yet (counting" in details  # not a bare progress_total 0


# --- "Test connection" in the form: the values in it, not saved ---------------------------------


def test_the_form_tests_its_values_without_saving_them(admin: Admin, make_user, dovecot, user) -> None:  # noqa: ANN001
    owner_id = user_id(make_user()[0])
    page = admin.get("/admin/imap-server/create").text
    assert 'id="test-connection"' in page and "/admin/assets/server-test.js" in page
    test = "/admin/imap-server/test-settings"
    tested = admin.post(test, server_form(owner_id, dovecot, user))
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] and "INBOX" in tested.json()["folders"]
    assert tested.json()["message"].startswith("Connection OK")
    wrong = admin.post(test, server_form(owner_id, dovecot, user, password="no"))
    assert wrong.status_code == 200 and wrong.json()["code"] == "IMAP_AUTH_FAILED"
    invalid = admin.post(test, server_form(owner_id, dovecot, user, host="imaps://x"))
    assert invalid.status_code == 400 and invalid.json()["message"].startswith("Not tested: host")
    with session_scope() as session:  # a test is no save
        assert session.exec(select(ImapServer).where(ImapServer.owner_id == owner_id)).first() is None

    # An edit form is tested as saving it would leave the server: a blank password is the stored one...
    server = created_server(admin, make_user, dovecot, user)
    edit = admin.get(f"/admin/imap-server/edit/{server.id}").text
    assert f"/admin/imap-server/test-settings?pk={server.id}" in edit
    url = f"/admin/imap-server/test-settings?pk={server.id}"
    kept = admin.post(url, server_form(server.owner_id, dovecot, user, password="", name="Not saved"))
    assert kept.status_code == 200 and kept.json()["ok"], kept.text
    assert row(ImapServer, server.id).name == "Work"
    # ... but never for another destination (validation's rule: the password comes along).
    moved = admin.post(url, server_form(server.owner_id, dovecot, user, password="", port="1"))
    assert moved.status_code == 400 and "password again" in moved.json()["error"]
    assert row(ImapServer, server.id).port == dovecot.port
    missing = admin.post("/admin/imap-server/test-settings?pk=999999", server_form(0, dovecot, user))
    assert missing.status_code == 400 and missing.json()["code"] == "NOT_FOUND"


def test_the_form_test_spends_the_admins_api_budget_and_is_same_origin_only(
    make_user,
    dovecot,
    user,
    monkeypatch,  # noqa: ANN001
) -> None:
    monkeypatch.setattr(settings, "rate_limit_user", "2/hour")
    username, password, _ = make_user(admin=True)
    with TestClient(create_app(run_worker=False), base_url="http://testserver") as client:
        admin = Admin(client, username, password)
        form = server_form(user_id(username), dovecot, user, port="x")  # refused at once: no connection
        assert client.post("/admin/imap-server/test-settings", data=form).status_code == 403  # no Origin
        for _ in range(2):
            assert admin.post("/admin/imap-server/test-settings", form).status_code == 400
        throttled = admin.post("/admin/imap-server/test-settings", form)
        assert throttled.status_code == 429 and "Retry-After" in throttled.headers
        assert throttled.json()["code"] == "THROTTLED" and "throttled" in throttled.json()["message"]
        # The budget is the one the API spends: the admin's token is throttled too.
        token = crud_token(username)
        api = client.post("/api/imap-servers/test/", json={}, headers={"Authorization": f"Token {token}"})
        assert api.status_code == 429


def crud_token(username: str) -> str:
    """A new API token of a user."""
    with session_scope() as session:
        return crud_users.create_token(session, user_id=user_id(username))


# --- folders_to_sync names the server lacks -----------------------------------------------------


def test_folders_the_last_run_missed_are_a_warning_on_the_server(admin: Admin, mirror) -> None:  # noqa: ANN001
    mirror.configure(folders_to_sync="INBOX,Archiv,sent")
    assert mirror.sync().status == "success"
    warning = "No such folder on the server: &#39;Archiv&#39;, &#39;sent&#39;"
    listed = admin.get(f"/admin/imap-server/list?owner_id={mirror.owner_id}").text
    assert warning in listed and "Names are exact" not in listed
    details = admin.get(f"/admin/imap-server/details/{mirror.server_id}").text
    assert warning in details and "Names are exact, case included" in details
    # A run under way does not hide what the last finished one found.
    with session_scope() as session:
        crud_runs.start_run(session, server=session.get(ImapServer, mirror.server_id), trigger="manual")
    assert warning in admin.get(f"/admin/imap-server/details/{mirror.server_id}").text
    with session_scope() as session:
        for run in session.exec(select(SyncRun).where(SyncRun.imap_server_id == mirror.server_id)):
            if run.status == "queued":
                session.delete(run)
    mirror.configure(folders_to_sync="INBOX")
    assert mirror.sync().status == "success"
    assert "No such folder" not in admin.get(f"/admin/imap-server/details/{mirror.server_id}").text
    assert "No such folder" not in admin.get(f"/admin/imap-server/list?owner_id={mirror.owner_id}").text
