"""Reading Stripe events: the mapping table of DESIGN.md, on current and older object shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.webhooks.inbox import requeue_resolvable
from app.webhooks.stripe_events import EventError, effects, parse_event, refs
from tests.webhooks.conftest import EVENTS, event_body, inbox, settle

STORY = {name: json.loads(body) for name, body in EVENTS}


def event(type_: str, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return parse_event(event_body(type=type_, obj=obj, **fields))


@pytest.mark.parametrize(
    ("stripe_status", "cancel_at_period_end", "membership", "auto_renew"),
    [
        ("active", False, "active", True),
        ("trialing", False, "active", True),
        ("active", True, "expiring_soon", False),
        ("past_due", False, "past_due", True),
        ("unpaid", False, "suspended", True),
        ("paused", False, "suspended", True),
        ("canceled", False, "cancelled", False),
        ("incomplete", False, "inactive", True),
        ("incomplete_expired", False, "expired", False),
    ],
)
def test_subscription_status_becomes_the_membership_status(
    stripe_status: str, cancel_at_period_end: bool, membership: str, auto_renew: bool
) -> None:
    sub = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": stripe_status,
        "cancel_at_period_end": cancel_at_period_end,
        "start_date": 1763700000,
    }
    found = effects(event("customer.subscription.updated", sub), "u1")
    assert found.membership["status"] == membership
    assert found.membership["autoRenew"] is auto_renew
    assert found.membership["stripeSubscriptionId"] == "sub_1"
    assert (
        found.owner_status is None
    )  # a subscription's status is the membership's, not the owner's


def test_the_billing_period_is_read_from_the_items_or_the_subscription() -> None:
    current = {
        "id": "sub_1",
        "object": "subscription",
        "status": "active",
        "items": {"data": [{"current_period_start": 1763700000, "current_period_end": 1795236000}]},
    }
    older = {
        "id": "sub_1",
        "object": "subscription",
        "status": "active",
        "current_period_start": 1763700000,
        "current_period_end": 1795236000,
    }
    for sub in (current, older):
        found = effects(event("customer.subscription.updated", sub), "u1")
        assert found.membership["renewalDate"] == "2026-11-21T04:40:00Z"
        assert found.membership["nextPaymentDate"] == "2026-11-21T04:40:00Z"


def test_the_story_fixture_periods_that_end_before_they_start_are_not_used() -> None:
    found = effects(STORY["evt_dev1_02"], "user_dev_1")
    assert found.membership["renewalDate"] is None


def test_an_older_invoice_shape_names_its_subscription_at_the_top() -> None:
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "customer": {"id": "cus_1", "object": "customer"},  # expanded
        "subscription": "sub_old",
        "subscription_details": {"metadata": {"ownerId": "u9"}},
        "amount_paid": 5000,
        "currency": "jpy",  # zero-decimal: 5000 yen, not 50
        "billing_reason": "subscription_cycle",
    }
    e = event("invoice.payment_succeeded", invoice)
    assert refs(e).owner_id == "u9"
    assert refs(e).customer_id == "cus_1"
    assert refs(e).subscription_id == "sub_old"
    found = effects(e, "u9")
    assert found.membership["lastPaymentAmount"] == 5000.0
    assert found.activities[0]["activityId"] == "activity_renewal_in_1"


@pytest.mark.parametrize(
    ("type_", "obj", "reason"),
    [
        (
            "checkout.session.completed",
            {"id": "cs_1", "object": "checkout.session", "mode": "payment"},
            "checkout session in payment mode: not a membership",
        ),
        (
            "invoice.paid",
            {"id": "in_1", "object": "invoice", "amount_paid": 100},
            "invoice in_1 is not for a subscription",
        ),
        (
            "customer.subscription.updated",
            {"id": "sub_1", "object": "subscription", "status": "mystery"},
            "subscription status 'mystery' is not known",
        ),
    ],
)
def test_cases_with_nothing_for_the_crm_are_ignored_with_a_reason(
    type_: str, obj: dict[str, Any], reason: str
) -> None:
    assert effects(event(type_, obj), "u1").ignore == reason


def test_a_payment_failure_note_and_activity_carry_the_error() -> None:
    found = effects(STORY["evt_dev1_09"], "user_dev_1")
    assert found.owner_status == "suspended"
    [note] = found.notes
    assert note["noteId"] == "note_evt_dev1_09"
    assert note["priority"] == "high"
    assert note["content"].startswith("Payment of £450.00 for booking bk_dev1 (balance) failed")
    [activity] = found.activities
    assert activity["activityType"] == "payment_failure"
    assert activity["metadata"]["errorMessage"] == "Your card was declined."


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"object": "event"}', b'{"object": "event", "id": "e", "type": "t", "created": "x"}'],
)
def test_parse_event_refuses_what_is_not_an_event(body: bytes) -> None:
    with pytest.raises(EventError):
        parse_event(body)


async def test_the_sweep_requeues_unmatched_events_whose_owner_arrived_another_way(
    stripe_post, services
) -> None:
    from app.records import Kind
    from tests.webhooks.conftest import store_quietly

    await stripe_post(EVENTS[0][1])  # names user_dev_1 (and customer cus_Dev1Example)
    customer_only = event_body(
        id="evt_c",
        type="invoice.paid",
        obj={
            "id": "in_c",
            "object": "invoice",
            "customer": "cus_Dev1Example",
            "subscription": "sub_dev1",
        },
    )
    await stripe_post(customer_only)
    await settle(services)
    assert {r.status for r in await inbox(services)} == {"unmatched"}
    await store_quietly(services, Kind.owner, "user_dev_1", {"userId": "user_dev_1", "name": "D"})
    await store_quietly(
        services,
        Kind.membership,
        "user_dev_1",
        {"userId": "user_dev_1", "stripeCustomerId": "cus_Dev1Example"},
    )
    async with services.sessions() as session, session.begin():
        assert await requeue_resolvable(session) == 2
    await settle(services)
    assert {r.status for r in await inbox(services)} == {"processed"}
