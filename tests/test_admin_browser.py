"""The admin interface in a real headless Chromium: log in, add a webhook, see a delivery.

The server runs with its embedded worker, the webhook points at a real receiver on loopback, and
the secret the page shows once is the one the receiver's signature checks out with. The browser
reaches nothing but loopback (``tests/support/browser.py``): the admin's assets are all local.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import offline_browser, require_browser, running_app
from tests.support.receiver import Receiver
from tests.support.webhook_checks import spec_verify


@pytest.fixture()
def server(database: str) -> Iterator[str]:
    """The app with its embedded worker under uvicorn; yields its base URL."""
    with running_app(run_worker=True) as url:
        yield url


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_an_admin_logs_in_adds_a_webhook_and_sees_its_test_delivery(
    server: str, make_user, tmp_path: Path
) -> None:
    require_browser()
    from playwright.sync_api import expect  # optional dependency: imported after require_browser()

    admin_name, admin_password, _ = make_user(admin=True)
    owner_name, _, _ = make_user()
    with Receiver() as receiver, offline_browser(tmp_path / "profile") as browser:
        page = browser.page
        # Anonymous: straight to the login form.
        page.goto(f"{server}/admin/webhook/list")
        expect(page).to_have_url(f"{server}/admin/login")
        page.fill("input[name=username]", admin_name)
        page.fill("input[name=password]", admin_password)
        page.click("button[type=submit]")
        expect(page.get_by_role("link", name="Webhooks")).to_be_visible()

        # Add a webhook for another user, pointing at the receiver.
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_role("link", name="+ New Webhook").click()
        owner = page.locator("select[name=owner_id] option", has_text=owner_name).get_attribute("value")
        page.locator("select[name=owner_id]").select_option(owner)
        page.fill("input[name=url]", receiver.url)
        for event in ("email.received", "thread.updated", "sync.completed"):
            expect(page.locator(f"input[name=events][value='{event}']")).to_be_checked()
        page.get_by_role("button", name="Save", exact=True).click()

        # The secret, shown once.
        secret_field = page.locator("#modal-secret-value")
        expect(secret_field).to_be_visible()
        secret = secret_field.input_value()
        assert secret.startswith("whsec_")
        page.screenshot(path=str(tmp_path / "secret.png"))
        page.locator("#modal-secret").get_by_role("button", name="Done").click()
        expect(page).to_have_url(f"{server}/admin/webhook/list")
        expect(page.locator("table")).to_contain_text(receiver.url)
        assert secret not in page.content()

        # Open it and send a test event; the deliveries page shows the attempt succeed.
        row = page.locator("table tbody tr", has_text=receiver.url)
        row.locator("a[href*='/admin/webhook/details/']").first.click()
        expect(page.locator("body")).to_contain_text(receiver.url)
        assert secret not in page.content()
        page.get_by_role("link", name="Send test event").click()
        expect(page).to_have_url(re.compile(r"/admin/webhook-delivery/list\?webhook_id=\d+$"))
        [request] = receiver.wait_for(lambda requests: len(requests) == 1)
        assert request.json["type"] == "webhook.test"
        assert spec_verify(secret, request.headers, request.body)
        row = page.locator("table tbody tr", has_text="webhook.test")
        # The page shows the attempt as it was; reload until the worker has recorded the answer.
        for _ in range(50):
            if "success" in (row.first.text_content(timeout=5_000) or ""):
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(row.first).to_contain_text("success")
        expect(row.first).to_contain_text("200")
        page.screenshot(path=str(tmp_path / "deliveries.png"))
        print(f"screenshots: {tmp_path}")

    assert browser.router.blocked == [], f"the admin tried to reach the internet: {browser.router.blocked}"
    assert browser.problems == [], browser.problems
    assert any("/admin/statics/" in url for url in browser.router.requested), browser.router.requested
