"""The ops story in a real browser: sign in; the overview shows what GET /api/crm/status says;
a record the CRM rejected shows on Failures, the fault is cleared, "retry" is pressed and the
record turns synced without a reload; a bulk run started from the page reaches 100% live; and
a POST without the CSRF token changes nothing."""

from __future__ import annotations

import httpx
from selenium.webdriver.support.ui import Select

from tests.ui.conftest import Browser


def _figure(browser: Browser, provider: str, name: str) -> str:
    return browser.text(f'[data-provider="{provider}"] [data-figure="{name}"]')


def test_ops_see_fix_and_watch_a_failure_heal(browser: Browser, ops_api: httpx.Client) -> None:
    assert (
        ops_api.post("/api/crm/sync/owner", json={"userId": "u1", "name": "Ann"}).status_code == 200
    )
    # A property whose owner was never sent waits for it: it stays in the queue.
    waiting = ops_api.post("/api/crm/sync/property", json={"propertyId": "p1", "ownerId": "ghost"})
    assert waiting.status_code == 202
    ops_api.put("/api/crm/mock/faults", json={"mode": "reject"}).raise_for_status()
    rejected = ops_api.post("/api/crm/sync/owner", json={"userId": "u-bad", "name": "Bad"})
    assert rejected.status_code == 502

    browser.sign_in()
    assert browser.text("h1") == "Overview"
    status = ops_api.get("/api/crm/status").json()["providers"]["mock"]
    assert _figure(browser, "mock", "queueDepth") == str(status["queueDepth"]) == "1"
    assert _figure(browser, "mock", "failures") == str(status["failures"]) == "1"
    connected = browser.find('[data-provider="mock"] [data-figure="connected"]')
    assert connected.get_attribute("data-value") == ("true" if status["connected"] else "false")
    breaker = browser.find('[data-provider="mock"] [data-figure="breaker"]')
    assert breaker.get_attribute("data-value") == status["breaker"]["state"] == "closed"
    assert _figure(browser, "mock", "synced24h") == "1"

    browser.go("/ui/failures")
    failed_row = browser.find('tr[data-record="owner/u-bad"]')
    assert "rejected by request" in failed_row.text
    assert browser.text('[data-group="1"] [data-figure="count"]') == "1"

    ops_api.delete("/api/crm/mock/faults").raise_for_status()
    browser.mark()
    browser.find('[data-group="1"] button.retry-group').click()
    browser.wait_for(
        lambda: (
            browser.find('[data-follow="owner/u-bad/mock"]').get_attribute("data-state") == "synced"
        )
    )
    assert browser.unreloaded()
    assert browser.text('[data-follow="owner/u-bad/mock"]') == "synced"
    assert (
        ops_api.get("/api/crm/sync/owner", params={"userId": "u-bad"}).json()["syncStatus"]
        == "synced"
    )

    browser.go("/ui/bulk")
    Select(browser.find("select[name=syncType]")).select_by_value("owners")
    browser.find("input[name=force]").click()
    browser.mark()
    browser.find("#start-bulk").click()
    browser.wait_for(
        lambda: browser.find(".bulk-progress").get_attribute("data-status") == "completed"
    )
    assert browser.unreloaded()
    assert [e.text for e in browser.finds('.bulk-progress [data-figure="percent"]')] == ["100%"]
    assert browser.text('.bulk-progress [data-figure="message"]') == "Bulk sync completed"
    synced = browser.find('.bulk-progress table.results tr[data-kind="owners"]').text.split()
    assert synced[:3] == ["owners", "2", "2"]  # total, synced: u1 and u-bad, forced
    runs = ops_api.get("/api/crm/sync/bulk").json()["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "completed"

    # The same POST the form makes, from the signed-in page, without the token: refused.
    refused = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch('/ui/bulk', {method: 'POST', credentials: 'same-origin',
                           body: new URLSearchParams({syncType: 'all'})})
          .then(r => done(r.status), e => done(String(e)));
        """
    )
    assert refused == 403
    assert len(ops_api.get("/api/crm/sync/bulk").json()["runs"]) == 1  # no run started
