"""The pages' own actions over HTTP: paging the sync log by cursor, replaying a webhook event,
retrying picked jobs, searching leads."""

from __future__ import annotations

import re

import pytest

from app.providers.mock import Faults
from app.settings import Settings
from tests.conftest import make_settings
from tests.ui.test_http import browser_like, csrf_of, sign_in
from tests.webhooks.conftest import EVENTS, SECRET, sign


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, stripe_webhook_secret=SECRET)


async def test_the_sync_log_pages_back_by_cursor_with_its_filters(app, client) -> None:
    for n in range(3):
        await client.post("/api/crm/sync/owner", json={"userId": f"u{n}", "name": f"O {n}"})
    async with browser_like(app) as web:
        await sign_in(web)
        first = await web.get("/ui/logs", params={"limit": 2, "entityType": "owner"})
        assert re.findall(r'data-log="(\d+)"', first.text) == ["3", "2"]
        older = re.search(r'href="(/ui/logs\?[^"]+)" rel="next"', first.text)
        assert older and "entityType=owner" in older.group(1)
        second = await web.get(older.group(1).replace("&amp;", "&"))
        assert re.findall(r'data-log="(\d+)"', second.text) == ["1"]
        assert 'rel="next"' not in second.text
        assert "&#34;name&#34;: &#34;O 0&#34;" in second.text  # the payload, escaped


async def test_a_webhook_event_is_replayed_from_the_inbox_page(app, anonymous) -> None:
    _, body = EVENTS[0]  # names an owner not synced here: unmatched
    async with anonymous() as stripe:
        sent = await stripe.post(
            "/api/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
        )
    assert sent.status_code == 200
    async with browser_like(app) as web:
        await sign_in(web)
        inbox = await web.get("/ui/webhooks", params={"source": "stripe"})
        [row_id] = re.findall(r'data-event="(\d+)"', inbox.text)
        replayed = await web.post(
            f"/ui/webhooks/{row_id}/replay", headers={"X-CSRF-Token": csrf_of(inbox)}
        )
        assert replayed.status_code == 200
        assert "queued again" in replayed.text and f'id="event-{row_id}"' in replayed.text
        detail = await web.get(f"/ui/webhooks/{row_id}")
        assert "checkout.session.completed" in detail.text


async def test_picked_jobs_are_retried_from_the_failures_page(app, client, mock) -> None:
    mock.faults = Faults(mode="reject")
    for user_id in ("u1", "u2"):
        body = {"userId": user_id, "name": user_id}
        assert (await client.post("/api/crm/sync/owner", json=body)).status_code == 502
    mock.faults = Faults()
    async with browser_like(app) as web:
        await sign_in(web)
        page = await web.get("/ui/failures")
        jobs = dict(re.findall(r'data-job="(\d+)" data-record="owner/(u\d)"', page.text))
        picked = [k for k, v in jobs.items() if v == "u2"]
        answer = await web.post("/ui/failures/retry", data={"job": picked, "csrf": csrf_of(page)})
        assert "1 job requeued" in answer.text
        assert 'data-follow="owner/u2/mock"' in answer.text
        assert 'data-record="owner/u1"' in answer.text  # u1 was not picked: still failed
