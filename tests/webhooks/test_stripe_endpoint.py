"""POST /api/webhooks/stripe as Stripe (and an impostor) sees it: 200 once stored, 400 for
anything unverified or unreadable with nothing stored, 404 when not configured."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.main import create_app
from app.models import Record
from app.webhooks.models import EventStatus, WebhookEvent
from tests.conftest import make_settings
from tests.webhooks.conftest import EVENTS, event_body, inbox, sign

CHECKOUT = dict(EVENTS)["evt_dev1_01"]


async def stored(services: Any) -> tuple[int, int]:
    async with services.sessions() as session:
        events = await session.scalar(select(func.count()).select_from(WebhookEvent))
        records = await session.scalar(select(func.count()).select_from(Record))
    return int(events or 0), int(records or 0)


BAD_DELIVERIES = {
    "wrong secret": (CHECKOUT, sign(CHECKOUT, secret="whsec_someone_else")),
    "body changed after signing": (
        CHECKOUT.replace(b'"silver"', b'"gold"'),
        sign(CHECKOUT),
    ),
    "stale timestamp": (CHECKOUT, sign(CHECKOUT, timestamp=int(time.time()) - 301)),
    "missing header": (CHECKOUT, None),
    "malformed header": (CHECKOUT, "not-a-signature"),
    "no v1 signature": (CHECKOUT, f"t={int(time.time())},v0=abc"),
    "non-JSON body": (b"this is not json", sign(b"this is not json")),
    "JSON but not an event": (b'{"hello": "world"}', sign(b'{"hello": "world"}')),
    "event without data.object": (
        b'{"id": "evt_x", "object": "event", "type": "invoice.paid", "created": 1}',
        sign(b'{"id": "evt_x", "object": "event", "type": "invoice.paid", "created": 1}'),
    ),
    "not UTF-8": (b'{"id": "\xff"}', sign(b'{"id": "\xff"}')),
    "empty body": (b"", sign(b"")),
}


@pytest.mark.parametrize("case", list(BAD_DELIVERIES))
async def test_unverified_or_unreadable_is_400_and_nothing_is_stored(
    stripe_post, services, case
) -> None:
    body, signature = BAD_DELIVERIES[case]
    answer = await stripe_post(body, signature=signature if signature else False)
    assert answer.status_code == 400, answer.text
    assert answer.json()["success"] is False
    assert answer.json()["field"] in ("Stripe-Signature", "body")
    assert await stored(services) == (0, 0)


async def test_a_valid_event_is_stored_with_its_headers_and_answered(stripe_post, services) -> None:
    answer = await stripe_post(CHECKOUT)
    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "received": True,
        "eventId": "evt_dev1_01",
        "status": "received",
        "duplicate": False,
    }
    [row] = await inbox(services)
    assert row.source == "stripe" and row.type == "checkout.session.completed"
    assert row.body == CHECKOUT.decode()  # exactly as received
    assert row.event_created.timestamp() == 1763700001
    assert row.owner_id == "user_dev_1" and row.customer_id == "cus_Dev1Example"
    assert row.headers["user-agent"] == "Stripe/1.0"
    assert "stripe-signature" not in row.headers  # the signature is not kept


async def test_a_repeat_delivery_answers_200_and_does_nothing_more(
    client, stripe_post, services, mock
) -> None:
    await client.post("/api/crm/sync/owner", json={"userId": "user_dev_1", "name": "Dev One"})
    first = await stripe_post(CHECKOUT)
    again = await stripe_post(CHECKOUT)
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicate"] is True
    rows = await inbox(services)
    assert len(rows) == 1


async def test_an_event_type_we_do_not_handle_is_kept_as_ignored(stripe_post, services) -> None:
    body = event_body(id="evt_other", type="customer.created", obj={"object": "customer"})
    answer = await stripe_post(body)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    [row] = await inbox(services)
    assert row.status == EventStatus.ignored.value
    assert row.reason == "event type customer.created is not handled"


async def test_without_a_secret_the_endpoint_is_404(db_url: str) -> None:
    app = create_app(make_settings(db_url))  # STRIPE_WEBHOOK_SECRET unset
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        answer = await c.post(
            "/api/webhooks/stripe", content=CHECKOUT, headers={"Stripe-Signature": sign(CHECKOUT)}
        )
        assert answer.status_code == 404
        assert "STRIPE_WEBHOOK_SECRET" in answer.json()["error"]
        async with app.state.services.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(WebhookEvent))
        assert count == 0


async def test_the_webhook_needs_no_api_key_but_ops_views_do(stripe_post, anonymous) -> None:
    assert (await stripe_post(CHECKOUT)).status_code == 200  # no Authorization header
    async with anonymous(None) as nobody:
        assert (await nobody.get("/api/webhooks/events")).status_code == 401
    from tests.conftest import SYNC_KEY

    async with anonymous(SYNC_KEY) as website:
        assert (await website.get("/api/webhooks/events")).status_code == 403
