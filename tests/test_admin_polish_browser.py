"""The admin's first hour (#19) in a real headless Chromium at 1400 px, one browser and one server for
the module: every column of the mail and server lists in view, links by name, an email's HTML in its
sandboxed frame (its script blocked), the folder filter, a list reloading itself unless rows are ticked,
forms without an owner on edit, a webhook's server choices, a refusal as a sentence (logged without a
traceback), no "Make admin" for an admin, the icon, "Test connection" in the server form, and the
folders the last sync did not find.

The browser reaches nothing but loopback (``tests/support/browser.py``). Each test checks that its page
had no error and asked for nothing outside.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from imap2api.admin.outbox import OutboxAdmin
from imap2api.crud import servers as crud_servers
from imap2api.crud import users as crud_users
from imap2api.db import session_scope
from imap2api.models import ImapServer, OutboxMessage, Webhook, utcnow
from imap2api.validation import validate_server
from tests.support.browser import OfflineBrowser, offline_browser, require_browser, running_app
from tests.support.messages import make_message

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

# Chromium's report of the mail's script, refused by the frame's sandbox: the one expected problem.
BLOCKED_SCRIPT = "Blocked script execution in 'about:srcdoc'"
# A failed form post answers 400: Chromium reports that as a console error, though the page is right.
REFUSED_FORM = "the server responded with a status of 400"


@pytest.fixture(scope="module")
def admin_login(database: str) -> tuple[str, str]:
    """An admin's name and password (the module's browser stays logged in as them)."""
    username, password = "admin_" + secrets.token_hex(4), "pw-" + secrets.token_hex(6)
    with session_scope() as session:
        crud_users.create_user(session, username=username, password=password, is_admin=True)
    return username, password


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    """The app under uvicorn, without the worker (the tests sync in the foreground)."""
    with running_app(run_worker=False) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server: str, admin_login: tuple[str, str], tmp_path_factory) -> Iterator[OfflineBrowser]:  # noqa: ANN001
    """Chromium, logged in to the admin."""
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    with offline_browser(tmp_path_factory.mktemp("profile")) as running:
        page = running.page
        page.goto(f"{server}/admin/login")
        page.fill("input[name=username]", admin_login[0])
        page.fill("input[name=password]", admin_login[1])
        page.click("button[type=submit]")
        expect(page.get_by_role("link", name="Emails")).to_be_visible()
        yield running


@pytest.fixture()
def page(browser: OfflineBrowser, tmp_path: Path):  # noqa: ANN201
    """The module's page, with a clean record of problems checked after the test."""
    browser.problems.clear()
    browser.router.blocked.clear()
    yield browser.page
    browser.page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    print(f"screenshot: {tmp_path / 'last.png'}")
    assert browser.router.blocked == [], f"the admin tried to reach the internet: {browser.router.blocked}"
    unexpected = [p for p in browser.problems if BLOCKED_SCRIPT not in p and REFUSED_FORM not in p]
    assert unexpected == [], browser.problems


def expect():  # noqa: ANN201
    """Playwright's ``expect`` (an optional dependency, there once the browser fixture ran)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def queue_outgoing(owner_id: int, server_id: int, subject: str) -> None:
    """A queued outgoing message nobody sends during the test."""
    with session_scope() as session:
        session.add(
            OutboxMessage(
                owner_id=owner_id,
                imap_server_id=server_id,
                message_id=f"<{subject.replace(' ', '-')}@example.test>",
                subject=subject,
                to='["bob@example.test"]',
                raw=b"Subject: x\r\n\r\nbody",
                next_attempt_at=utcnow() + timedelta(hours=1),
            )
        )


def stored_server(owner_id: int, name: str) -> int:
    """A server of this owner, stored directly (never connected to)."""
    data = validate_server({"name": name, "host": "imap.example.com", "username": "u", "password": "p"})
    with session_scope() as session:
        return crud_servers.create_server(session, owner_id=owner_id, data=data).id


def columns_in_view(page, table: str = "table") -> list[str]:  # noqa: ANN001
    """The header cells of a list whose right edge is past the scroller's (cut off): none, ideally."""
    return page.evaluate(
        """(selector) => {
            const scroller = document.querySelector('.table-responsive');
            const right = scroller.getBoundingClientRect().right;
            return [...document.querySelectorAll(selector + ' thead th')]
                .filter((th) => th.getBoundingClientRect().right > right + 1)
                .map((th) => th.textContent.trim());
        }""",
        table,
    )


def test_columns_fit_links_show_names_html_is_framed_and_folders_filter(server: str, page, mirror) -> None:  # noqa: ANN001
    long_sender = "A Very Long Sender Name <" + "someone.with.a.long.address" * 2 + "@example.com>"
    for number in range(3):
        mirror.deliver(
            make_message(
                subject="A subject long enough to fill the column of a narrow screen " * 2 + str(number),
                sender=long_sender,
                html="<p>Hello <b id='bold'>there</b></p><script>document.body.textContent = 'ran'</script>",
            )
        )
    mirror.deliver(make_message(subject="filed away"), folder="Archive")
    mirror.sync()
    with session_scope() as session:
        stored = session.get(ImapServer, mirror.server_id)
        stored.last_error = "Login failed: " + "a long reason " * 30
        server_name = stored.name

    # Every column of the mail list is in view beside the menu and the filters, none scrolled off;
    # the server column names the server.
    page.goto(f"{server}/admin/email/list?imap_server_id={mirror.server_id}")
    expect()(page.locator("table tbody tr")).to_have_count(4)
    assert columns_in_view(page) == []
    for label in ("sender", "date", "seen"):
        expect()(page.locator("table thead th", has_text=label)).to_be_in_viewport()
    expect()(page.locator("table tbody tr").first.get_by_role("link", name=server_name)).to_be_visible()
    # The folder filter, as clicked in the sidebar.
    page.locator("#filter-sidebar a", has_text="Archive").click()
    expect()(page).to_have_url(re.compile(r"folder=Archive"))
    expect()(page.locator("table tbody tr")).to_have_count(1)
    expect()(page.locator("table tbody")).to_contain_text("filed away")

    page.goto(f"{server}/admin/imap-server/list?owner_id={mirror.owner_id}")
    expect()(page.locator("table tbody tr")).to_have_count(1)
    assert columns_in_view(page) == []
    expect()(page.locator("table thead th", has_text="last_error")).to_be_in_viewport()
    owner = page.locator("table tbody tr").first.locator("a[href*='/admin/user/details/']")
    expect()(owner).to_contain_text(f"#{mirror.owner_id}")
    assert re.search(r"\w", (owner.text_content() or "").split("#")[0])  # a name before the id

    # The HTML body is rendered, in a frame whose script did not run.
    email_id = next(email.id for email in mirror.emails() if email.folder == "INBOX")
    page.goto(f"{server}/admin/email/details/{email_id}")
    frame = page.frame_locator("iframe[sandbox]")
    expect()(frame.locator("#bold")).to_have_text("there")
    expect()(frame.locator("body")).not_to_have_text("ran")
    source = page.locator("details.mail-html-source")
    expect()(source.locator("pre")).to_be_hidden()
    source.locator("summary").click()
    expect()(source.locator("pre")).to_contain_text("<b id='bold'>there</b>")


def test_a_list_refreshes_itself_unless_rows_are_ticked(server: str, page, mirror, monkeypatch) -> None:  # noqa: ANN001
    # The interval is the view's: one second here, so that the test waits a few seconds, not 30.
    monkeypatch.setattr(OutboxAdmin, "refresh_seconds", 1)
    queue_outgoing(mirror.owner_id, mirror.server_id, "first out")
    page.goto(f"{server}/admin/outbox-message/list?imap_server_id={mirror.server_id}")
    expect()(page.locator("#auto-refresh")).to_contain_text("1 s")
    queue_outgoing(mirror.owner_id, mirror.server_id, "second out")
    expect()(page.locator("table")).to_contain_text("second out", timeout=10_000)
    # Not while rows are ticked (an action is being chosen for them): a page that stays keeps its mark.
    page.locator("table tbody tr .select-box").first.check()
    page.evaluate("window.stayed = true")
    queue_outgoing(mirror.owner_id, mirror.server_id, "third out")
    page.wait_for_timeout(3_000)  # three turns of the refresh
    assert page.evaluate("window.stayed === true")
    expect()(page.locator("table")).not_to_contain_text("third out")
    expect()(page.locator("table tbody tr .select-box").first).to_be_checked()


def test_forms_keep_the_owner_and_offer_only_the_owners_servers(server: str, page, make_user) -> None:  # noqa: ANN001
    owner_name, _, _ = make_user()
    stranger_name, _, _ = make_user()
    with session_scope() as session:
        owner_id = crud_users.get_user_by_username(session, username=owner_name).id
        stranger_id = crud_users.get_user_by_username(session, username=stranger_name).id
    own, foreign = stored_server(owner_id, "Own server"), stored_server(stranger_id, "Foreign server")

    # A new webhook: the owner is chosen, the servers are grouped by owner.
    page.goto(f"{server}/admin/webhook/create")
    page.locator("select[name=owner_id]").select_option(str(owner_id))
    page.fill("input[name=url]", "https://example.com/hook")
    group = page.locator(f"select[name=imap_server_id] optgroup:has(option[value='{own}'])")
    expect()(group).to_have_attribute("label", f"{owner_name} (#{owner_id})")
    page.locator("select[name=imap_server_id]").select_option(str(own))
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#modal-secret").get_by_role("button", name="Done").click()
    expect()(page).to_have_url(f"{server}/admin/webhook/list")  # before the next goto, not racing it
    with session_scope() as session:
        webhook = session.exec(select(Webhook).where(Webhook.owner_id == owner_id)).one()
    assert webhook.imap_server_id == own

    # Its edit form: no owner, and only the owner's servers.
    page.goto(f"{server}/admin/webhook/edit/{webhook.id}")
    expect()(page.locator("input[name=url]")).to_have_value("https://example.com/hook")
    expect()(page.locator("[name=owner_id]")).to_have_count(0)
    options = page.locator("select[name=imap_server_id] option")
    expect()(options).to_have_count(2)  # every server of the owner, or this one
    expect()(page.locator("select[name=imap_server_id]")).to_have_value(str(own))
    assert page.locator(f"select[name=imap_server_id] option[value='{foreign}']").count() == 0

    # The server edit form has no owner either.
    page.goto(f"{server}/admin/imap-server/edit/{own}")
    expect()(page.locator("input[name=name]")).to_have_value("Own server")
    expect()(page.locator("[name=owner_id]")).to_have_count(0)


def test_a_refusal_is_a_sentence_logged_without_a_traceback(server: str, page, admin_login, caplog) -> None:  # noqa: ANN001
    with session_scope() as session:
        own_id = crud_users.get_user_by_username(session, username=admin_login[0]).id
    page.goto(f"{server}/admin/user/edit/{own_id}")
    page.locator("input[name=is_admin]").uncheck()
    with caplog.at_level(logging.INFO, logger="sqladmin"):
        page.get_by_role("button", name="Save", exact=True).click()
        alert = page.locator(".alert-danger")
        expect()(alert).to_contain_text("your own admin rights")
    assert "non_field_errors" not in (page.locator("body").text_content() or "")
    refused = [record for record in caplog.records if "your own admin rights" in record.getMessage()]
    assert refused and all(record.levelno == logging.INFO and not record.exc_info for record in refused)
    assert not any(record.exc_info for record in caplog.records if record.name.startswith("sqladmin"))


def test_make_admin_is_offered_only_to_non_admins_and_the_icon_loads(
    server: str,
    page,
    admin_login,
    make_user,  # noqa: ANN001
) -> None:
    with session_scope() as session:
        own_id = crud_users.get_user_by_username(session, username=admin_login[0]).id
        plain_id = crud_users.get_user_by_username(session, username=make_user()[0]).id
    page.goto(f"{server}/admin/user/details/{plain_id}")
    expect()(page.get_by_role("link", name="Make admin")).to_be_visible()
    page.goto(f"{server}/admin/user/details/{own_id}")
    expect()(page.get_by_role("link", name="Revoke all tokens")).to_be_visible()
    expect()(page.get_by_role("link", name="Make admin")).to_have_count(0)

    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon
    # As an image of the page: Chromium's own favicon fetch bypasses Playwright's routing, which then
    # fails the URL for the page too (hence a query the asset route ignores).
    width = page.evaluate(
        """(href) => new Promise((done) => {
            const image = new Image();
            image.onload = () => done(image.naturalWidth);
            image.onerror = () => done(-1);
            image.src = href + "?loaded-by-the-test";
        })""",
        icon,
    )
    assert width > 0, f"{icon} did not load as an image"


def test_the_server_form_tests_its_values_and_keeps_them(server: str, page, dovecot, user, make_user) -> None:  # noqa: ANN001
    owner_name, _, _ = make_user()
    page.goto(f"{server}/admin/imap-server/create")
    owner = page.locator("select[name=owner_id] option", has_text=owner_name).get_attribute("value")
    page.locator("select[name=owner_id]").select_option(owner)
    page.fill("input[name=name]", "Tested")
    page.fill("input[name=host]", dovecot.host)
    page.fill("input[name=port]", str(dovecot.port))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "wrong")
    page.locator("select[name=tls_mode]").select_option("starttls")
    button = page.get_by_role("button", name="Test connection")
    result = page.locator("#connection-test-result")

    button.click()
    expect()(result).to_contain_text("Connection failed [IMAP_AUTH_FAILED]", timeout=20_000)
    expect()(result).to_have_class(re.compile("alert-danger"))
    page.fill("input[name=password]", "secret")
    button.click()
    expect()(result).to_contain_text("Connection OK", timeout=20_000)
    expect()(result).to_contain_text("INBOX")
    # The page did not change: the form holds what was typed, the password too, and nothing is stored.
    expect()(page).to_have_url(f"{server}/admin/imap-server/create")
    expect()(page.locator("input[name=password]")).to_have_value("secret")
    expect()(page.locator("input[name=name]")).to_have_value("Tested")
    with session_scope() as session:
        assert session.exec(select(ImapServer).where(ImapServer.name == "Tested")).first() is None
    page.get_by_role("button", name="Save", exact=True).click()
    expect()(page).to_have_url(re.compile(r"/admin/imap-server/list"))
    with session_scope() as session:
        saved = session.exec(select(ImapServer).where(ImapServer.name == "Tested")).one()

    # On the edit form, a blank password is the stored one; a new port needs it again.
    page.goto(f"{server}/admin/imap-server/edit/{saved.id}")
    button.click()
    expect()(result).to_contain_text("Connection OK", timeout=20_000)
    page.fill("input[name=port]", "1")
    button.click()
    expect()(result).to_contain_text("Not tested: password: Enter the IMAP password again")
    expect()(page.locator("input[name=port]")).to_have_value("1")


def test_folders_the_last_sync_missed_are_a_warning(server: str, page, mirror) -> None:  # noqa: ANN001
    mirror.configure(folders_to_sync="INBOX,Archiv")
    mirror.sync()
    page.goto(f"{server}/admin/imap-server/list?owner_id={mirror.owner_id}")
    warning = page.locator("table tbody tr .missing-folders")
    expect()(warning).to_have_text("⚠ No such folder on the server: 'Archiv'")
    expect()(warning).to_be_in_viewport()
    page.goto(f"{server}/admin/imap-server/details/{mirror.server_id}")
    expect()(page.locator(".missing-folders")).to_contain_text("Names are exact, case included")
