"""A real browser (Debian's headless Chromium, driven by Playwright) runs the back office.

Support logs in, finds an account, grants 5 uses with a reason, suspends it, sees both on the
ledger, and the API then refuses that account's charges with 403.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.models import Account, AccountStatus
from ledger.models import EntryKind, LedgerEntry
from tests.factories import SUPPORT_PERMISSIONS, create_api_key, funded_account, staff_user

CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None
)
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium_browser(django_db_setup: None) -> Iterator[object]:
    """Headless Chromium for this module (after the test database exists)."""
    # `make test` installs Debian's chromium; Playwright never downloads a browser here.
    assert CHROMIUM, "Chromium is missing: run `make test` (it installs chromium and chromium-driver)"
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread while the browser lives, and
    # Django refuses database calls from a thread with a running loop unless told otherwise.
    # Limited to this module: the loop is gone once the browser closes.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def post_charge(base_url: str, key: str, account: Account) -> int:
    body = {
        "oauth_provider": account.oauth_provider,
        "external_id": account.external_id,
        "amount_minor": 100,
        "currency": "USD",
        "idempotency_key": "after-suspension",
    }
    request = urllib.request.Request(
        f"{base_url}/v1/billing/charges",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.django_db(transaction=True)
def test_support_grants_uses_and_suspends_an_account_in_a_real_browser(chromium_browser, live_server):
    staff_user("support", permissions=SUPPORT_PERMISSIONS)
    account = funded_account({"oauth_provider": "oauth:google", "external_id": "dana@example.com"}, free_uses=0)
    funded_account({"oauth_provider": "oauth:google", "external_id": "someone-else@example.com"})
    key = create_api_key()
    page = chromium_browser.new_page()
    page.set_default_timeout(15_000)

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "support")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")

    page.click("#content-main a[href='/admin/accounts/account/']")
    page.fill("#searchbar", "dana@")
    page.press("#searchbar", "Enter")
    page.click("#result_list a:has-text('dana@example.com')")
    page.wait_for_selector("#account-ledger")

    page.click("#action-grant-credits")
    page.fill("#id_amount", "5")
    page.check("input[name=unit][value=uses]")
    page.fill("#id_reason", "Apology for the outage")
    page.click("input[name=confirm]")
    page.wait_for_selector("#account-ledger")
    assert "granted +500 credit minor units" in page.inner_text(".messagelist")

    page.click("#action-suspend")
    page.fill("#id_reason", "Chargeback under review")
    page.click("input[name=confirm]")
    page.wait_for_selector("#account-ledger")
    assert "now suspended" in page.inner_text(".messagelist")

    rows = page.locator("#account-ledger tr.ledger-row")
    newest, grant = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    assert "status_change" in newest and "staff:support" in newest and "Chargeback under review" in newest
    assert "grant" in grant and "500" in grant and "staff:support" in grant and "Apology for the outage" in grant
    page.close()

    account.refresh_from_db()
    assert (account.status, account.balance_minor) == (AccountStatus.SUSPENDED, 500)
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.GRANT, actor="staff:support").count() == 1
    assert post_charge(live_server.url, key, account) == 403
