"""Which event wins when Stripe's `created` cannot say: same-second ties, statuses that cannot go
back, a cancelled subscription that stays cancelled. Every scenario is delivered in both orders
and must end the same."""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations
from typing import Any

from sqlalchemy import update

from app.records import Kind
from app.webhooks.models import StripeOwnerState
from tests.webhooks.conftest import event_body, settle, snapshot

OWNER = {"userId": "user_tie", "name": "Tia Tie", "email": "tia@example.com"}
SECOND = 1764100000  # every event below happens in this second unless it says otherwise


def subscription_event(
    event_id: str,
    type_: str,
    status: str,
    *,
    previous: dict[str, Any] | None = None,
    created: int = SECOND,
    run: str = "",
    **fields: Any,
) -> bytes:
    """An event about subscription sub_tie of owner user_tie (ids suffixed with `run`)."""
    obj = {
        "id": f"sub_tie{run}",
        "object": "subscription",
        "customer": f"cus_tie{run}",
        "status": status,
        "cancel_at_period_end": False,
        "start_date": SECOND,
        "metadata": {"userId": f"{OWNER['userId']}{run}"},
        **fields,
    }
    extra = {"data": {"object": obj, "previous_attributes": previous}} if previous else {}
    return event_body(id=f"{event_id}{run}", type=type_, created=created, obj=obj, **extra)


def invoice_event(
    event_id: str,
    type_: str,
    status: str,
    *,
    created: int = SECOND,
    paid_at: int | None = None,
    run: str = "",
) -> bytes:
    """An event about invoice in_tie of subscription sub_tie (ids suffixed with `run`)."""
    return event_body(
        id=f"{event_id}{run}",
        type=type_,
        created=created,
        obj={
            "id": f"in_tie{run}",
            "object": "invoice",
            "customer": f"cus_tie{run}",
            "status": status,
            "billing_reason": "subscription_cycle",
            "currency": "gbp",
            "amount_due": 2500,
            "amount_paid": 2500 if status == "paid" else 0,
            "attempt_count": 1,
            "status_transitions": {"paid_at": paid_at},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "metadata": {"userId": f"{OWNER['userId']}{run}"},
                    "subscription": f"sub_tie{run}",
                },
            },
        },
    )


async def deliver_in_every_order(
    client: Any, stripe_post: Any, services: Any, scenario: Callable[[str], list[bytes]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The scenario's events in each order, each run for an owner of its own (ids suffixed
    with the run's number), each event processed before the next arrives; (membership, owner)
    at the end of each run, without the run's suffix so the runs compare."""
    ends = []
    for number, order in enumerate(permutations(range(len(scenario(""))))):
        run = f"_{number}"
        owner_id = f"{OWNER['userId']}{run}"
        answer = await client.post("/api/crm/sync/owner", json={**OWNER, "userId": owner_id})
        assert answer.status_code == 200
        bodies = scenario(run)
        for index in order:
            assert (await stripe_post(bodies[index])).status_code == 200
            await settle(services)
        membership = await snapshot(services, Kind.membership, owner_id)
        owner = await snapshot(services, Kind.owner, owner_id)
        assert membership is not None and owner is not None
        ends.append((unsuffixed(membership, run), unsuffixed(owner, run)))
    return ends


def unsuffixed(data: dict[str, Any], run: str) -> dict[str, Any]:
    return {k: v.replace(run, "") if isinstance(v, str) else v for k, v in data.items()}


async def test_created_and_updated_in_one_second_end_active_in_both_orders(
    client, stripe_post, services
) -> None:
    def scenario(run: str) -> list[bytes]:
        return [
            subscription_event(
                "evt_tie_created", "customer.subscription.created", "incomplete", run=run
            ),
            subscription_event(
                "evt_tie_updated",
                "customer.subscription.updated",
                "active",
                previous={"status": "incomplete"},
                run=run,
            ),
        ]

    ends = await deliver_in_every_order(client, stripe_post, services, scenario)
    assert [m["status"] for m, _ in ends] == ["active", "active"]
    assert ends[0] == ends[1]


async def test_previous_attributes_order_two_updates_of_one_second(
    client, stripe_post, services
) -> None:
    # Back from past_due, then set to cancel at the period's end, within one second: the
    # second names the first's cancel_at_period_end as its previous value.
    def scenario(run: str) -> list[bytes]:
        return [
            subscription_event(
                "evt_tie_b",
                "customer.subscription.updated",
                "active",
                previous={"status": "past_due"},
                run=run,
            ),
            subscription_event(
                "evt_tie_a",  # an id that sorts first: the tie is not broken by the id
                "customer.subscription.updated",
                "active",
                previous={"cancel_at_period_end": False},
                cancel_at_period_end=True,
                run=run,
            ),
        ]

    ends = await deliver_in_every_order(client, stripe_post, services, scenario)
    assert [m["status"] for m, _ in ends] == ["expiring_soon", "expiring_soon"]
    assert ends[0] == ends[1]


async def test_a_paid_invoice_cannot_fail_again(client, stripe_post, services) -> None:
    # The retry's success is stamped a second earlier than the failure (two Stripe servers'
    # clocks): the invoice's status, not the clock, says which came last.
    def scenario(run: str) -> list[bytes]:
        return [
            invoice_event(
                "evt_inv_failed", "invoice.payment_failed", "open", created=SECOND + 1, run=run
            ),
            invoice_event("evt_inv_paid", "invoice.paid", "paid", paid_at=SECOND, run=run),
        ]

    ends = await deliver_in_every_order(client, stripe_post, services, scenario)
    assert [o["status"] for _, o in ends] == ["active", "active"]
    assert [m["paymentFailureCount"] for m, _ in ends] == [1, 1]  # the failure still happened
    assert ends[0] == ends[1]


async def test_a_cancelled_subscription_stays_cancelled(client, stripe_post, services) -> None:
    # Its last invoice (prorations), paid after the end: the payment is recorded, the
    # membership is not brought back by it.
    def scenario(run: str) -> list[bytes]:
        return [
            subscription_event(
                "evt_sub_deleted",
                "customer.subscription.deleted",
                "canceled",
                canceled_at=SECOND,
                ended_at=SECOND,
                run=run,
            ),
            invoice_event(
                "evt_final_invoice",
                "invoice.paid",
                "paid",
                created=SECOND + 5,
                paid_at=SECOND + 5,
                run=run,
            ),
        ]

    ends = await deliver_in_every_order(client, stripe_post, services, scenario)
    for membership, owner in ends:
        assert membership["status"] == "cancelled"
        assert owner["status"] == "inactive"
        assert membership["lastPaymentAmount"] == 25.0
    assert ends[0] == ends[1]


async def test_watermarks_stored_before_these_rules_still_hold(
    client, stripe_post, services
) -> None:
    """An owner whose applied state was written in the old form ({key: [created, id]})."""
    assert (await client.post("/api/crm/sync/owner", json=OWNER)).status_code == 200
    await stripe_post(subscription_event("evt_old", "customer.subscription.updated", "active"))
    await settle(services)
    async with services.sessions() as session, session.begin():
        await session.execute(
            update(StripeOwnerState)
            .where(StripeOwnerState.owner_id == OWNER["userId"])
            .values(applied={"membership.status": [SECOND + 10, "evt_newer_long_ago"]})
        )
    await stripe_post(subscription_event("evt_late", "customer.subscription.updated", "past_due"))
    await settle(services)
    membership = await snapshot(services, Kind.membership, OWNER["userId"])
    assert membership is not None and membership["status"] == "active"  # older: not applied
