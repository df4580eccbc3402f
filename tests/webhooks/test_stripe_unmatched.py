"""Events about owners we don't know yet are kept, shown to ops, and applied once the owner
arrives, automatically or by hand (API and CLI); a broken event fails alone."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update
from typer.testing import CliRunner

from app.cli.main import cli
from app.db import utcnow
from app.records import Kind
from app.sync.accept import accept_one as accept
from app.webhooks import inbox as inbox_module
from app.webhooks import stripe_handler
from app.webhooks.models import EventStatus, WebhookEvent
from tests.webhooks.conftest import EVENTS, event_body, inbox, settle, snapshot, store_quietly

STORY = dict(EVENTS)
OWNER = {"userId": "user_dev_1", "name": "Dev One", "email": "dev1@example.com"}


def invoice_paid_for_customer(customer: str, event_id: str = "evt_customer_only") -> bytes:
    """An invoice that names only its Stripe customer (no metadata anywhere)."""
    return event_body(
        id=event_id,
        type="invoice.paid",
        created=1763700100,
        obj={
            "id": "in_customer_only",
            "object": "invoice",
            "customer": customer,
            "billing_reason": "subscription_create",
            "amount_paid": 4900,
            "currency": "gbp",
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"metadata": {}, "subscription": "sub_dev1"},
            },
        },
    )


async def status_of(services: Any, event_id: str) -> tuple[str, str | None]:
    rows = {r.external_id: r for r in await inbox(services)}
    return rows[event_id].status, rows[event_id].reason


async def test_an_unknown_owner_waits_and_is_applied_when_the_owner_is_synced(
    client, stripe_post, services, mock
) -> None:
    assert (await stripe_post(STORY["evt_dev1_01"])).status_code == 200
    await settle(services)
    status, reason = await status_of(services, "evt_dev1_01")
    assert status == "unmatched"
    assert "owner user_dev_1 is not known" in (reason or "")
    assert (Kind.membership, "user_dev_1") not in mock.store

    await client.post("/api/crm/sync/owner", json=OWNER)  # the website syncs the owner
    await settle(services)
    assert (await status_of(services, "evt_dev1_01"))[0] == "processed"
    assert mock.store[(Kind.membership, "user_dev_1")]["status"] == "active"
    assert mock.store[(Kind.owner, "user_dev_1")]["status"] == "active"


async def test_an_event_naming_only_a_customer_matches_once_a_membership_has_it(
    client, stripe_post, services, mock
) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    await stripe_post(invoice_paid_for_customer("cus_Dev1Example"))
    await settle(services)
    status, reason = await status_of(services, "evt_customer_only")
    assert status == "unmatched"
    assert "customer cus_Dev1Example is on no membership" in (reason or "")

    await stripe_post(STORY["evt_dev1_01"])  # the checkout stores the customer id
    await settle(services)
    assert (await status_of(services, "evt_customer_only"))[0] == "processed"
    membership = mock.store[(Kind.membership, "user_dev_1")]
    assert membership["lastPaymentAmount"] == 49.0
    rows = {r.external_id: r for r in await inbox(services)}
    assert rows["evt_customer_only"].owner_id == "user_dev_1"  # resolved, and shown


async def test_a_membership_synced_by_the_website_matches_waiting_customer_events(
    client, stripe_post, services, mock
) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    await stripe_post(invoice_paid_for_customer("cus_website"))
    await settle(services)
    assert (await status_of(services, "evt_customer_only"))[0] == "unmatched"
    await client.post(
        "/api/crm/sync/membership",
        json={"userId": "user_dev_1", "planTier": "gold", "stripeCustomerId": "cus_website"},
    )
    await settle(services)
    assert (await status_of(services, "evt_customer_only"))[0] == "processed"
    membership = await snapshot(services, Kind.membership, "user_dev_1")
    assert membership is not None
    assert membership["planTier"] == "gold" and membership["status"] == "active"


async def test_ops_list_unmatched_events_and_replay_one(
    client, ops, stripe_post, services, mock
) -> None:
    await stripe_post(STORY["evt_dev1_01"])
    await stripe_post(STORY["evt_dev1_08"])
    await settle(services)
    listed = await ops.get("/api/webhooks/events", params={"status": "unmatched"})
    assert listed.status_code == 200
    body = listed.json()
    assert [e["eventId"] for e in body["events"]] == ["evt_dev1_08", "evt_dev1_01"]
    assert body["counts"] == {"unmatched": 2}
    assert body["events"][0]["ownerId"] == "user_dev_1"
    assert "not known" in body["events"][0]["reason"]

    one = await ops.get(f"/api/webhooks/events/{body['events'][0]['id']}")
    assert one.json()["body"]["type"] == "payment_intent.succeeded"
    by_stripe_id = await ops.get("/api/webhooks/events", params={"eventId": "evt_dev1_08"})
    assert [e["id"] for e in by_stripe_id.json()["events"]] == [body["events"][0]["id"]]

    # The owner arrives some other way than the accept path (no hook ran): ops replays one,
    # and applying it for this owner brings the other one along.
    await store_quietly(services, Kind.owner, "user_dev_1", OWNER)
    replayed = await ops.post(f"/api/webhooks/events/{body['events'][1]['id']}/replay")
    assert replayed.status_code == 200
    assert replayed.json()["event"]["status"] == "received"
    assert replayed.json()["event"]["eventId"] == "evt_dev1_01"
    await settle(services)
    assert (await status_of(services, "evt_dev1_01"))[0] == "processed"
    assert (await status_of(services, "evt_dev1_08"))[0] == "processed"
    assert "activity_evt_dev1_08" in {rid for _, rid in mock.store}

    assert (await ops.post("/api/webhooks/events/999999/replay")).status_code == 404
    not_an_id = await ops.post("/api/webhooks/events/evt_dev1_01/replay")  # ours, not Stripe's
    assert not_an_id.status_code == 422 and not_an_id.json()["field"] == "id"
    bad = await ops.get("/api/webhooks/events", params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"


async def test_crm_sync_stripe_replay_requeues_by_status(
    stripe_post, services, settings, mock
) -> None:
    await stripe_post(STORY["evt_dev1_01"])
    await settle(services)
    await store_quietly(services, Kind.owner, "user_dev_1", OWNER)  # no hook: stays unmatched
    runner = CliRunner()
    env = {"DATABASE_URL": settings.database_url}
    result = await asyncio.to_thread(
        runner.invoke, cli, ["stripe", "replay", "--status", "unmatched"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "1 event queued for handling again" in result.output
    await settle(services)
    assert (await status_of(services, "evt_dev1_01"))[0] == "processed"

    [row] = await inbox(services)
    by_id = await asyncio.to_thread(
        runner.invoke, cli, ["stripe", "replay", "--id", str(row.id)], env=env
    )
    assert "1 event queued" in by_id.output
    await settle(services)
    assert mock.store[(Kind.membership, "user_dev_1")]["status"] == "active"  # harmless twice

    nothing = await asyncio.to_thread(runner.invoke, cli, ["stripe", "replay"], env=env)
    assert nothing.exit_code == 2


async def test_a_broken_event_fails_alone(client, stripe_post, services, mock) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    await stripe_post(STORY["evt_dev1_08"])
    await stripe_post(STORY["evt_dev1_09"])
    # Stored bodies are verified, so a broken one means damage at rest: made here by hand.
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.external_id == "evt_dev1_08")
            .values(body="{broken", status="received", run_after=utcnow())
        )
    await settle(services)
    status, reason = await status_of(services, "evt_dev1_08")
    assert status == "failed" and reason == "body: not JSON"
    assert (await status_of(services, "evt_dev1_09"))[0] == "processed"


async def test_processing_that_raises_is_retried_then_failed_with_nothing_half_written(
    client, stripe_post, services, monkeypatch
) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    monkeypatch.setattr(inbox_module, "RETRY_BASE", 0.0)

    async def accept_but_no_memberships(session: Any, kind: Kind, *args: Any, **kw: Any) -> Any:
        if kind is Kind.membership:  # after the owner was written in the same transaction
            raise RuntimeError("membership write broke")
        return await accept(session, kind, *args, **kw)

    monkeypatch.setattr(stripe_handler, "accept_one", accept_but_no_memberships)
    await stripe_post(STORY["evt_dev1_01"])
    await settle(services)
    [row] = await inbox(services)
    assert row.status == EventStatus.failed.value
    assert row.attempts == inbox_module.MAX_ATTEMPTS
    assert "RuntimeError: membership write broke (gave up after 5 attempts)" in (row.reason or "")
    owner = await snapshot(services, Kind.owner, "user_dev_1")
    assert owner is not None and "status" not in owner  # the owner's change was rolled back
    assert await snapshot(services, Kind.membership, "user_dev_1") is None
