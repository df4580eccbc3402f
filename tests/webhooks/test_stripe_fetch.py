"""With STRIPE_API_KEY, subscription and invoice events are applied from the object read from
Stripe when they are processed (respx stands in for Stripe's API); without it, or when the read
fails, from the event's payload under the watermark rules. The key never shows."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from app.models import SyncLog
from app.records import Kind
from app.settings import Settings
from tests.conftest import make_settings
from tests.webhooks.conftest import EVENTS, SECRET, inbox, settle, snapshot

STRIPE_API = "https://api.stripe.com/v1"
API_KEY = "rk_test_51Secret0123456789abcdefSECRET"
OWNER = {"userId": "user_dev_1", "name": "Dev One", "email": "dev1@example.com"}
STORY = {name: json.loads(body) for name, body in EVENTS}
RAW = dict(EVENTS)


def now_at_stripe(fixture: str, **changes: Any) -> dict[str, Any]:
    """A fixture's object as Stripe would answer a read of it now."""
    return {**STORY[fixture]["data"]["object"], **changes}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, stripe_webhook_secret=SECRET, stripe_api_key=API_KEY)


async def told(client: Any, stripe_post: Any, services: Any, *fixtures: str) -> None:
    assert (await client.post("/api/crm/sync/owner", json=OWNER)).status_code == 200
    for name in fixtures:
        assert (await stripe_post(RAW[name])).status_code == 200
        await settle(services)


async def reasons(services: Any) -> dict[str, str | None]:
    return {r.external_id: r.reason for r in await inbox(services)}


async def test_a_late_past_due_update_is_applied_as_the_subscription_is_now(
    client, stripe_post, services
) -> None:
    with respx.mock(assert_all_mocked=True) as stripe_api:
        read = stripe_api.get(f"{STRIPE_API}/subscriptions/sub_dev1").respond(
            json=now_at_stripe("evt_dev1_07")  # active again since
        )
        await told(client, stripe_post, services, "evt_dev1_01", "evt_dev1_05")

    membership = await snapshot(services, Kind.membership, OWNER["userId"])
    assert membership is not None and membership["status"] == "active"  # not past_due
    assert read.call_count == 1
    assert read.calls[0].request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "state read from Stripe's API" in (await reasons(services))["evt_dev1_05"]


async def test_a_failed_renewal_since_paid_is_recorded_without_suspending(
    client, stripe_post, services
) -> None:
    with respx.mock(assert_all_mocked=True) as stripe_api:
        stripe_api.get(f"{STRIPE_API}/invoices/in_dev1_r1").respond(
            json=now_at_stripe("evt_dev1_04", status="paid", amount_paid=9900)
        )
        await told(client, stripe_post, services, "evt_dev1_01", "evt_dev1_04")

    owner = await snapshot(services, Kind.owner, OWNER["userId"])
    membership = await snapshot(services, Kind.membership, OWNER["userId"])
    assert owner is not None and owner["status"] == "active"  # it is paid now
    assert membership is not None and membership["paymentFailureCount"] == 1  # it did fail
    note = await snapshot(services, Kind.note, "note_evt_dev1_04")
    assert note is not None and "failed" in note["content"]


async def test_checkout_and_payment_intents_are_not_read_from_stripe(
    client, stripe_post, services
) -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as stripe_api:
        any_read = stripe_api.route(host="api.stripe.com").respond(500)
        await told(client, stripe_post, services, "evt_dev1_01", "evt_dev1_08", "evt_dev1_09")
    assert any_read.call_count == 0
    owner = await snapshot(services, Kind.owner, OWNER["userId"])
    assert owner is not None and owner["status"] == "suspended"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"error": {"type": "api_error", "message": "boom"}}),
        httpx.Response(
            401,
            json={"error": {"type": "invalid_request_error", "message": f"Bad key {API_KEY}"}},
        ),
        httpx.ConnectTimeout("read timed out"),
    ],
    ids=["5xx", "bad key", "timeout"],
)
async def test_a_failed_read_falls_back_to_the_payload_and_never_shows_the_key(
    client, stripe_post, services, caplog, failure: httpx.Response | Exception
) -> None:
    caplog.set_level(logging.DEBUG)
    with respx.mock(assert_all_mocked=True) as stripe_api:
        route = stripe_api.get(f"{STRIPE_API}/subscriptions/sub_dev1")
        if isinstance(failure, Exception):
            route.side_effect = failure
        else:
            route.return_value = failure
        await told(client, stripe_post, services, "evt_dev1_01", "evt_dev1_05")

    membership = await snapshot(services, Kind.membership, OWNER["userId"])
    assert membership is not None and membership["status"] == "past_due"  # the payload's
    reason = (await reasons(services))["evt_dev1_05"] or ""
    assert "state from the event (Stripe API:" in reason
    assert API_KEY not in reason
    assert API_KEY not in caplog.text
    async with services.sessions() as session:
        logged = [
            json.dumps([r.request, r.response, r.error])
            for r in await session.scalars(select(SyncLog))
        ]
    assert logged and not any(API_KEY in row for row in logged)


class TestWithoutAKey:
    @pytest.fixture
    def settings(self, db_url: str) -> Settings:
        return make_settings(db_url, stripe_webhook_secret=SECRET)

    async def test_nothing_is_read_and_the_watermarks_decide(
        self, client, stripe_post, services
    ) -> None:
        with respx.mock(assert_all_mocked=True, assert_all_called=False) as stripe_api:
            any_read = stripe_api.route(host="api.stripe.com").respond(500)
            await told(client, stripe_post, services, "evt_dev1_01", "evt_dev1_07", "evt_dev1_05")
        assert any_read.call_count == 0
        membership = await snapshot(services, Kind.membership, OWNER["userId"])
        assert membership is not None and membership["status"] == "active"  # 05 is older
        assert "older than the applied state" in (await reasons(services))["evt_dev1_05"]
