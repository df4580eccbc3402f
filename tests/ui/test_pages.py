"""Every page in a real browser, with data from the real paths (website syncs, a HubSpot pull
from the fake HubSpot, signed Stripe events, a bulk run): each loads only from the service's own
origin without a CSP violation, fits a phone's width, and is photographed for the README."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium import webdriver

from app.fakes.hubspot import FakeHubSpot
from app.main import create_app
from app.settings import HubSpotSettings, PullSettings
from tests.conftest import make_settings
from tests.e2e.conftest import HUBSPOT_TOKEN
from tests.ui.conftest import PHONE, Browser, LiveServer, browsing
from tests.webhooks.conftest import EVENTS, OWNER_ID, SECRET, sign

OWNERS = [
    ("user_dev_1", "Dana Devlin", "dana@example.com", "07700 900001"),
    ("u2", "Sam Okafor", "sam.okafor@example.com", "07700 900002"),
    ("u3", "Priya Shah", "priya@example.com", "07700 900003"),
    ("u4", "Tom Baker", "tom.baker@example.com", "07700 900004"),
    ("u5", "Lena Fischer", "lena@example.com", "07700 900005"),
]
CONTACTS = [
    {
        "firstname": "Maya",
        "lastname": "Ortiz",
        "email": "maya@example.org",
        "phone": "+44 7700 900111",
        "company": "Ortiz Lets",
        "hs_lead_status": "NEW",
        "lifecyclestage": "lead",
    },
    {
        "firstname": "Joe",
        "lastname": "Park",
        "email": "joe.park@example.org",
        "phone": "07700 900222",
        "hs_lead_status": "OPEN",
        "lifecyclestage": "marketingqualifiedlead",
    },
    {
        "firstname": "Aisha",
        "lastname": "Khan",
        "email": "aisha@example.org",
        "company": "Khan Holidays",
        "hs_lead_status": "IN_PROGRESS",
        "lifecyclestage": "opportunity",
    },
]
PAGES = [  # (screenshot name, path, heading)
    ("overview", "/ui/", "Overview"),
    ("record", "/ui/records?kind=owner&id=u2", "Records"),
    ("failures", "/ui/failures", "Failures"),
    ("sync-log", "/ui/logs?limit=20", "Sync log"),
    ("bulk-runs", "/ui/bulk", "Bulk runs"),
    ("webhooks", "/ui/webhooks", "Webhooks"),
    ("leads", "/ui/leads", "Leads"),
]


def _seed(api: Any) -> None:
    for user_id, name, email, phone in OWNERS:
        body = {"userId": user_id, "name": name, "email": email, "phone": phone}
        assert api.post("/api/crm/sync/owner", json=body).status_code == 200
    bulk = api.post("/api/crm/sync/bulk?wait=true", json={"syncType": "owners", "force": True})
    assert bulk.json()["status"] == "completed"
    api.put("/api/crm/mock/faults", json={"mode": "reject", "count": 1}).raise_for_status()
    rejected = {"userId": "u6", "name": "Rita Vance", "email": "rita@example.com"}
    assert api.post("/api/crm/sync/owner", json=rejected).status_code == 502
    api.post("/api/crm/sync/owner", json={"userId": "u2", "companyName": "Okafor Cottages"})
    for _, body in EVENTS[:4]:
        sent = api.post(
            "/api/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
        )
        assert sent.status_code == 200
    pulled = api.post("/api/crm/pull", json={"provider": "hubspot", "strategy": "append"})
    assert pulled.status_code == 200, pulled.text


def test_every_page_stays_on_its_origin_fits_a_phone_and_is_photographed(
    chromium: webdriver.Chrome, db_url: str, free_port: Callable[[], int]
) -> None:
    hubspot = FakeHubSpot(rate_limit=10_000, token=HUBSPOT_TOKEN)
    hubspot.seed_contacts(CONTACTS)
    with LiveServer(hubspot.asgi(), free_port()) as fake:
        settings = make_settings(
            db_url,
            crm_providers="mock,hubspot",
            stripe_webhook_secret=SECRET,
            hubspot=HubSpotSettings(
                _env_file=None,  # type: ignore[call-arg]
                access_token=HUBSPOT_TOKEN,
                base_url=fake.url,
                rate_limit=10_000,
                rate_margin=0,
            ),
            pull=PullSettings(_env_file=None, enabled=False),  # type: ignore[call-arg]
        )
        with (
            LiveServer(create_app(settings), free_port()) as live,
            live.api() as api,
            browsing(chromium, live.url) as browser,
        ):
            _seed(api)
            photograph = db_url.startswith("sqlite")  # one set of pictures per run
            _every_page(browser, photograph)


def _every_page(browser: Browser, photograph: bool) -> None:
    browser.go("/ui/login")
    if photograph:
        browser.screenshot("ui-login")
    browser.sign_in()
    visited = []
    for name, path, heading in PAGES:
        browser.go(path)
        assert browser.text("h1") == heading, path
        assert not browser.overflows(), f"{path} is wider than 1280 px"
        visited.append(path)
        if name == "record":  # one attempt opened, as someone reading it would
            browser.find("ol.timeline details summary").click()
        if photograph:
            browser.screenshot(f"ui-{name}")
    browser.go("/ui/leads")
    browser.find("input[name=q]").send_keys("ortiz")
    browser.find("form[role=search] button").click()
    browser.wait_for(lambda: "q=ortiz" in browser.driver.current_url)
    assert [row.text.split(" ")[:2] for row in browser.finds("tr[data-lead]")] == [
        ["Maya", "Ortiz"]
    ]
    browser.go("/ui/bulk")
    run = browser.find("a[href^='/ui/bulk/bulk_']").get_attribute("href")
    browser.go(run.removeprefix(browser.base))
    assert browser.text('.bulk-progress [data-figure="percent"]') == "100%"
    if photograph:
        browser.screenshot("ui-bulk-run")
    browser.go("/ui/webhooks")
    event = browser.find("a[href^='/ui/webhooks/']").get_attribute("href")
    browser.go(event.removeprefix(browser.base))
    if photograph:
        browser.screenshot("ui-webhook-event")
    assert browser.origins_checked > 20  # pages, styles, scripts and the live requests

    browser.resize(PHONE)
    for name, path, heading in PAGES:
        browser.go(path)
        assert browser.text("h1") == heading, path
        assert not browser.overflows(), f"{path} is wider than a phone"
        if photograph and name in ("overview", "failures", "record"):
            browser.screenshot(f"ui-{name}-phone")
    assert OWNER_ID  # the Stripe story's owner is the first one synced
