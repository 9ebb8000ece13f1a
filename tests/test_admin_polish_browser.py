"""The admin's layout in a real headless Chromium at 1400 px: every column of the mail and server lists
in view, an email's HTML rendered in its sandboxed frame (its script blocked), and the outbox list
reloading itself unless rows are ticked.

The browser reaches nothing but loopback (``tests/support/browser.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from imap2api.db import session_scope
from imap2api.models import ImapServer, OutboxMessage, utcnow
from tests.support.browser import offline_browser, require_browser, running_app
from tests.support.messages import make_message

# Chromium's report of the mail's script, refused by the frame's sandbox: the one expected problem.
BLOCKED_SCRIPT = "Blocked script execution in 'about:srcdoc'"


@pytest.fixture()
def server(database: str) -> Iterator[str]:
    """The app under uvicorn, without the worker (the test syncs in the foreground)."""
    with running_app(run_worker=False) as url:
        yield url


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


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_columns_fit_html_is_framed_and_the_outbox_refreshes(
    server: str, make_user, mirror, tmp_path: Path
) -> None:
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    long_sender = "A Very Long Sender Name <" + "someone.with.a.long.address" * 2 + "@example.com>"
    for number in range(3):
        mirror.deliver(
            make_message(
                subject="A subject long enough to fill the column of a narrow screen " * 2 + str(number),
                sender=long_sender,
                html="<p>Hello <b id='bold'>there</b></p><script>document.body.textContent = 'ran'</script>",
            )
        )
    mirror.sync()
    with session_scope() as session:
        session.get(ImapServer, mirror.server_id).last_error = "Login failed: " + "a long reason " * 30
    admin_name, admin_password, _ = make_user(admin=True)

    with offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        page.goto(f"{server}/admin/login")
        page.fill("input[name=username]", admin_name)
        page.fill("input[name=password]", admin_password)
        page.click("button[type=submit]")
        expect(page.get_by_role("link", name="Emails")).to_be_visible()

        # Every column of the mail list is in view beside the menu and the filters, none scrolled off.
        page.goto(f"{server}/admin/email/list?imap_server_id={mirror.server_id}")
        expect(page.locator("table tbody tr")).to_have_count(3)
        page.screenshot(path=str(tmp_path / "emails.png"), full_page=True)
        assert columns_in_view(page) == []
        for label in ("sender", "date", "seen"):
            expect(page.locator("table thead th", has_text=label)).to_be_in_viewport()
        page.goto(f"{server}/admin/imap-server/list?owner_id={mirror.owner_id}")
        expect(page.locator("table tbody tr")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "servers.png"), full_page=True)
        assert columns_in_view(page) == []
        expect(page.locator("table thead th", has_text="last_error")).to_be_in_viewport()

        # The HTML body is rendered, in a frame whose script did not run.
        email_id = mirror.emails()[0].id
        page.goto(f"{server}/admin/email/details/{email_id}")
        frame = page.frame_locator("iframe[sandbox]")
        expect(frame.locator("#bold")).to_have_text("there")
        expect(frame.locator("body")).not_to_have_text("ran")
        source = page.locator("details.mail-html-source")
        expect(source.locator("pre")).to_be_hidden()
        source.locator("summary").click()
        expect(source.locator("pre")).to_contain_text("<b id='bold'>there</b>")
        page.screenshot(path=str(tmp_path / "email.png"), full_page=True)

        # The outbox list shows a new message by itself.
        queue_outgoing(mirror.owner_id, mirror.server_id, "first out")
        page.goto(f"{server}/admin/outbox-message/list?imap_server_id={mirror.server_id}")
        expect(page.locator("#auto-refresh")).to_contain_text("10 s")
        queue_outgoing(mirror.owner_id, mirror.server_id, "second out")
        expect(page.locator("table")).to_contain_text("second out", timeout=20_000)
        # Not while rows are ticked (an action is being chosen for them).
        page.locator("table tbody tr .select-box").first.check()
        queue_outgoing(mirror.owner_id, mirror.server_id, "third out")
        page.wait_for_timeout(12_000)
        expect(page.locator("table")).not_to_contain_text("third out")
        expect(page.locator("table tbody tr .select-box").first).to_be_checked()
        print(f"screenshots: {tmp_path}")

    assert browser.router.blocked == [], f"the admin tried to reach the internet: {browser.router.blocked}"
    assert [problem for problem in browser.problems if BLOCKED_SCRIPT not in problem] == [], browser.problems
