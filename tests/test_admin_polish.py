"""The admin's first hour, over HTTP on SQLite and PostgreSQL: what a new admin tripped over.

The webhook edit form has no owner field (only creation picks one) and offers the owner's servers
only (creation groups them by owner; another owner's is refused either way); lists that change on their own
reload themselves (an external script, allowed by the admin's policy); links show names with ids, looked
up once per page (the same number of queries for one row as for many); cells wrap; an email's HTML is
framed sandboxed with its escaped source folded below; mail filters by folder; a refusal reads as a
sentence (no ``non_field_errors:``) and is logged as one INFO line; "Make admin" is not offered on an
admin's page; the admin serves its own icon. The layout in a real browser is in
``test_admin_polish_browser.py``.
"""

from __future__ import annotations

import logging
import re

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from imap2api.admin import favicon
from imap2api.admin.common import labelled
from imap2api.crud import servers as crud_servers
from imap2api.db import session_scope
from imap2api.models import User, Webhook
from imap2api.validation import validate_server
from tests.support.messages import make_message
from tests.support.statements import recorded_statements
from tests.test_admin import Admin, logged_in, row, user_id, webhook_form


@pytest.fixture()
def admin(client, make_user) -> Admin:  # noqa: ANN001
    """An admin user logged in to the admin interface."""
    username, password, _ = make_user(admin=True)
    session = Admin(client, username, password)
    assert logged_in(session.get("/admin/user/list"))
    return session


def created_webhook(admin: Admin, owner_id: int, url: str = "https://example.com/hook") -> Webhook:
    """A webhook made through the admin's create form."""
    assert admin.post("/admin/webhook/create", webhook_form(owner_id, url)).status_code == 200
    with session_scope() as session:
        return session.exec(select(Webhook).where(Webhook.owner_id == owner_id)).one()


# --- 1. the owner is chosen once ---------------------------------------------------------------


def test_the_webhook_edit_form_has_no_owner_field_and_keeps_the_owner(admin: Admin, make_user) -> None:
    owner_id = user_id(make_user()[0])
    make_user()  # another user, who would be first in an owner list
    assert 'name="owner_id"' in admin.get("/admin/webhook/create").text
    webhook = created_webhook(admin, owner_id)
    form = admin.get(f"/admin/webhook/edit/{webhook.id}")
    assert form.status_code == 200 and 'name="owner_id"' not in form.text
    edit = webhook_form(owner_id, "https://example.com/other")
    del edit["owner_id"]
    assert admin.post(f"/admin/webhook/edit/{webhook.id}", edit).status_code == 302
    assert row(Webhook, webhook.id).url == "https://example.com/other"
    assert row(Webhook, webhook.id).owner_id == owner_id


def stored_server(owner_id: int, name: str) -> int:
    """A server of this owner, stored directly (never connected to)."""
    data = validate_server({"name": name, "host": "imap.example.com", "username": "u", "password": "p"})
    with session_scope() as session:
        return crud_servers.create_server(session, owner_id=owner_id, data=data).id


def test_a_webhook_form_offers_only_its_owners_servers(admin: Admin, make_user) -> None:
    owner_name, _, _ = make_user()
    stranger_name, _, _ = make_user()
    owner_id, stranger_id = user_id(owner_name), user_id(stranger_name)
    own, foreign = stored_server(owner_id, "Own server"), stored_server(stranger_id, "Foreign server")
    webhook = created_webhook(admin, owner_id)
    form = admin.get(f"/admin/webhook/edit/{webhook.id}").text
    assert f'value="{own}"' in form and "Own server" in form
    assert f'value="{foreign}"' not in form and "Foreign server" not in form
    # A post naming another owner's server is refused with the form, and nothing is stored.
    edit = webhook_form(owner_id, "https://example.com/changed", imap_server_id=str(foreign))
    del edit["owner_id"]
    refused = admin.post(f"/admin/webhook/edit/{webhook.id}", edit)
    assert refused.status_code == 400 and "does not belong to this owner" in refused.text
    assert "Foreign server" not in refused.text
    assert row(Webhook, webhook.id).imap_server_id is None
    assert row(Webhook, webhook.id).url == "https://example.com/hook"
    edit["imap_server_id"] = str(own)
    assert admin.post(f"/admin/webhook/edit/{webhook.id}", edit).status_code == 302
    assert row(Webhook, webhook.id).imap_server_id == own
    # The create form, where the owner is still to choose, groups the servers by owner.
    create = admin.get("/admin/webhook/create").text
    for name, pk, server_id in ((owner_name, owner_id, own), (stranger_name, stranger_id, foreign)):
        assert re.search(rf'<optgroup label="{name} \(#{pk}\)">\s*<option value="{server_id}"', create)


# --- 2. lists that change on their own ---------------------------------------------------------


def test_lists_that_change_on_their_own_reload_with_an_allowed_script(admin: Admin) -> None:
    for path in ("/admin/webhook-delivery/list", "/admin/outbox-message/list"):
        page = admin.get(path)
        assert page.status_code == 200
        [tag] = re.findall(r"<script[^>]*refresh\.js[^>]*>", page.text)
        assert 'data-seconds="10"' in tag and "Refreshes every 10 s" in page.text
        # An external file of this site: the policy's script-src 'self' runs it, no inline script.
        assert "script-src 'self'" in page.headers["content-security-policy"]
    for path in (
        "/admin/user/list",
        "/admin/webhook/list",
        "/admin/email/list",
        "/admin/webhook-delivery/details/1",
    ):
        assert "refresh.js" not in admin.get(path).text, path
    script = admin.get("/admin/assets/refresh.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "location.reload" in script.text and ".select-box:checked" in script.text


def test_the_admin_assets_are_a_fixed_list(client) -> None:  # noqa: ANN001
    for name, media_type in (("admin.css", "text/css"), ("favicon.ico", "image/x-icon")):
        # Public, like sqladmin's statics: the login page uses them.
        response = client.get(f"/admin/assets/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
        assert response.headers["x-content-type-options"] == "nosniff"
    for name in ("site.py", "..%2Fsite.py", "../common.py", "templates", "static", "main.css"):
        assert client.get(f"/admin/assets/{name}").status_code == 404, name


# --- 3. names, not bare ids --------------------------------------------------------------------


def link_texts(page: str, identity: str) -> list[str]:
    """The texts (tags dropped) of a page's links to objects of a view."""
    anchors = re.findall(rf'<a href="[^"]*/admin/{identity}/details/\d+">(.*?)</a>', page, re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", "", anchor).split()) for anchor in anchors]


def test_links_show_names_with_ids_looked_up_once_per_page(admin: Admin, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="first"))
    mirror.sync()
    owner = row(User, mirror.owner_id).username
    listing = f"/admin/email/list?imap_server_id={mirror.server_id}"
    with recorded_statements() as one_row:
        page = admin.get(listing)
    assert page.status_code == 200
    assert link_texts(page.text, "user") == [f"{owner} #{mirror.owner_id}"]
    assert link_texts(page.text, "imap-server") == [f"mailbox of {mirror.mail_user} #{mirror.server_id}"]
    assert f'<span class="text-muted">#{mirror.owner_id}</span></a>' in page.text

    for number in range(6):
        mirror.deliver(make_message(subject=f"more {number}"))
    mirror.sync()
    with recorded_statements() as seven_rows:
        page = admin.get(listing)
    assert link_texts(page.text, "user") == [f"{owner} #{mirror.owner_id}"] * 7
    # One lookup per kind of linked object, whatever the number of rows.
    assert len(seven_rows) == len(one_row), seven_rows

    details = admin.get(f"/admin/email/details/{mirror.emails()[0].id}")
    assert link_texts(details.text, "user") == [f"{owner} #{mirror.owner_id}"]


def test_a_long_name_is_shortened_and_an_unknown_one_shows_the_id(admin: Admin, make_user) -> None:
    owner_id = user_id(make_user()[0])
    webhook = created_webhook(admin, owner_id, "https://example.com/" + "long/" * 20)
    assert admin.get(f"/admin/webhook/action/send-test?pks={webhook.id}").status_code == 302
    deliveries = admin.get(f"/admin/webhook-delivery/list?webhook_id={webhook.id}").text
    # A webhook is named by its URL, shortened.
    assert "https://example.com/long/long/" in deliveries and "…" in deliveries
    assert ("https://example.com/" + "long/" * 20)[:59] + "…" in deliveries
    # A row whose object is gone (or a formatter used outside AdminView) shows the id alone.
    assert labelled(None, 7) == "#7" and labelled("<b>", 7) == '&lt;b&gt; <span class="text-muted">#7</span>'


# --- 4. cells wrap ------------------------------------------------------------------------------


def test_list_and_details_pages_load_the_wrapping_style(admin: Admin, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="styled"))
    mirror.sync()
    for path in ("/admin/email/list", f"/admin/email/details/{mirror.emails()[0].id}", "/admin/login"):
        page = admin.get(path)
        assert "/admin/assets/admin.css" in page.text and "/admin/assets/favicon.ico" in page.text, path
    assert 'class="imap2api-list"' in admin.get("/admin/email/list").text
    style = admin.get("/admin/assets/admin.css").text
    assert "overflow-wrap: anywhere" in style and "white-space: normal" in style


# --- 5. the HTML body ---------------------------------------------------------------------------


def test_an_email_shows_its_text_and_its_html_framed_with_the_source_folded(admin: Admin, mirror) -> None:  # noqa: ANN001
    html = '<p>Hello <b>there</b></p><script>steal()</script><form action="https://evil.example"></form>'
    mirror.deliver(make_message(subject="both bodies", body="Hello there, in text.", html=html))
    mirror.sync()
    [email] = mirror.emails()
    page = admin.get(f"/admin/email/details/{email.id}").text
    assert "Hello there, in text." in page
    [frame] = re.findall(r"<iframe[^>]*>", page)
    assert 'sandbox=""' in frame and "allow-" not in frame and 'srcdoc="&lt;p&gt;Hello' in frame
    assert "<details" in page and "<summary>HTML source</summary>" in page
    assert "<script>steal()" not in page and "<b>there</b>" not in page and "&lt;b&gt;there&lt;/b&gt;" in page


# --- 6. the folder filter -----------------------------------------------------------------------


def test_mail_filters_by_folder(admin: Admin, mirror) -> None:  # noqa: ANN001
    mirror.deliver(make_message(subject="in the inbox"))
    mirror.deliver(make_message(subject="filed away"), folder="Archive")
    mirror.sync()
    everything = admin.get("/admin/email/list").text
    assert "in the inbox" in everything and "filed away" in everything
    assert "folder=Archive" in everything and "folder=INBOX" in everything
    archived = admin.get("/admin/email/list?folder=Archive").text
    assert "filed away" in archived and "in the inbox" not in archived
    assert "in the inbox" in admin.get("/admin/email/list?folder=__all").text
    assert "filed away" not in admin.get("/admin/email/list?folder=No+such+folder").text


# --- 7. refusals read as sentences --------------------------------------------------------------


def test_a_refusal_shows_the_message_alone(admin: Admin, make_user, mirror) -> None:  # noqa: ANN001
    own_id = user_id(admin.username)
    demoted = admin.post(f"/admin/user/edit/{own_id}", {"username": admin.username, "is_active": "y"})
    assert demoted.status_code == 400 and "your own admin rights" in demoted.text
    assert "non_field_errors" not in demoted.text
    deleted = admin.client.request(
        "DELETE", f"/admin/user/delete?pks={own_id}", headers={"Origin": "http://testserver"}
    )
    assert (
        "cannot delete yourself" in deleted.text.replace("+", " ") and "non_field_errors" not in deleted.text
    )
    # A field's error still names its field.
    stranger_id = user_id(make_user()[0])
    refused = admin.post(
        "/admin/webhook/create",
        webhook_form(stranger_id, "https://example.com/hook", imap_server_id=str(mirror.server_id)),
    )
    assert refused.status_code == 400 and "does not belong" in refused.text
    assert "non_field_errors" not in refused.text


# --- 8. make admin ------------------------------------------------------------------------------


def test_make_admin_is_not_offered_on_an_admins_page(admin: Admin, make_user) -> None:
    plain_id = user_id(make_user()[0])
    own_id = user_id(admin.username)
    assert "action/make-admin" in admin.get(f"/admin/user/details/{plain_id}").text
    own_page = admin.get(f"/admin/user/details/{own_id}").text
    assert "action/make-admin" not in own_page and "Make admin" not in own_page
    assert "action/revoke-tokens" in own_page
    made = admin.get(f"/admin/user/action/make-admin?pks={plain_id},{own_id}")
    assert "1 user(s) made admin. 1 already were." in admin.get(made.headers["location"]).text
    assert row(User, plain_id).is_admin
    assert "action/make-admin" not in admin.get(f"/admin/user/details/{plain_id}").text


# --- 9. a refusal is no traceback ---------------------------------------------------------------


def test_a_refused_form_is_logged_as_one_info_line(admin: Admin, make_user, caplog) -> None:  # noqa: ANN001
    own_id = user_id(admin.username)
    with caplog.at_level(logging.INFO, logger="sqladmin"):
        refused = admin.post(f"/admin/user/edit/{own_id}", {"username": admin.username, "is_active": "y"})
    assert refused.status_code == 400
    [record] = [record for record in caplog.records if record.name == "sqladmin.application"]
    assert record.levelno == logging.INFO and record.exc_info is None and not record.exc_text
    assert "your own admin rights" in record.getMessage()
    assert "Traceback" not in caplog.text


def test_an_unexpected_failure_keeps_its_traceback(admin: Admin, make_user, caplog, monkeypatch) -> None:  # noqa: ANN001
    from imap2api.services import accounts

    def broken(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise RuntimeError("a bug")

    monkeypatch.setattr(accounts, "save_user", broken)
    with caplog.at_level(logging.INFO, logger="sqladmin"):
        response = admin.post(
            f"/admin/user/edit/{user_id(make_user()[0])}", {"username": "x", "is_active": "y"}
        )
    assert response.status_code == 400
    [record] = [record for record in caplog.records if record.name == "sqladmin.application"]
    assert record.levelno == logging.ERROR and record.exc_info is not None


# --- 10. the icon -------------------------------------------------------------------------------


def test_the_icon_is_an_ico_the_app_can_serve_too() -> None:
    app = Starlette()
    app.add_route("/favicon.ico", favicon, include_in_schema=False)
    response = TestClient(app).get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO
    assert "max-age" in response.headers["cache-control"]
