"""The overview refreshes itself: what the workers deliver meanwhile shows without a reload."""

from __future__ import annotations

import httpx

from tests.ui.conftest import Browser


def test_the_overview_shows_new_deliveries_without_a_reload(
    browser: Browser, ops_api: httpx.Client
) -> None:
    browser.sign_in()
    synced = '[data-provider="mock"] [data-figure="synced24h"]'
    assert browser.text(synced) == "0"
    browser.mark()

    for n in range(3):
        body = {"userId": f"u{n}", "name": f"Owner {n}"}
        assert ops_api.post("/api/crm/sync/owner", json=body).status_code == 200

    browser.wait_text(synced, "3", seconds=15)
    assert browser.unreloaded()
    caption = browser.text('[data-provider="mock"] figure.chart figcaption')
    assert caption == "Deliveries per minute, last hour: 3 in all, peak 3" or (
        caption == "Deliveries per minute, last hour: 3 in all, peak 2"  # across a minute's end
    )
    activity = ops_api.get("/api/crm/sync/activity").json()["providers"]["mock"]
    assert activity["synced24h"] == 3 and sum(activity["deliveriesPerMinute"]) == 3
