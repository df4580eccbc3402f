"""Amounts in any currency, from a Stripe webhook to the internal CRM and to what HubSpot
receives (respx), by Stripe's rules: pounds in pence, yen in yen, dinars in fils (thousandths)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import count
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from app.providers.internal.models import CrmActivity, CrmMembership
from app.settings import HubSpotSettings, PullSettings, Settings
from app.webhooks.stripe_events import effects, parse_event
from tests.conftest import make_settings
from tests.providers.conftest import HUBSPOT, TOKEN, hubspot_answer
from tests.webhooks.conftest import SECRET, event_body, settle

OWNER = {"userId": "user_fx", "name": "Fay Exchange", "email": "fay@example.com"}
NOW = "2026-11-30T10:00:00.000Z"


@dataclass(frozen=True)
class Case:
    currency: str
    minor: int  # what Stripe sends
    major: float  # what the records and the internal CRM hold
    shown: str  # what a person reads
    hubspot: str  # the HubSpot number property's text


CASES = [
    Case("gbp", 45050, 450.5, "£450.50", "450.5"),
    Case("jpy", 5000, 5000.0, "5,000 JPY", "5000"),  # zero-decimal: not ¥50.00
    Case("kwd", 92120, 92.12, "92.120 KWD", "92.12"),  # three-decimal: not 921.20 KWD
]


def checkout(case: Case) -> bytes:
    return event_body(
        id=f"evt_fx_checkout_{case.currency}",
        type="checkout.session.completed",
        created=1764000000,
        obj={
            "id": "cs_fx",
            "object": "checkout.session",
            "mode": "subscription",
            "client_reference_id": OWNER["userId"],
            "customer": "cus_fx",
            "subscription": "sub_fx",
            "currency": case.currency,
            "amount_total": case.minor,
            "metadata": {"planTier": "gold", "billingCycle": "monthly"},
            "created": 1764000000,
        },
    )


def renewal(case: Case) -> bytes:
    return event_body(
        id=f"evt_fx_renewal_{case.currency}",
        type="invoice.paid",
        created=1764000100,
        obj={
            "id": "in_fx",
            "object": "invoice",
            "customer": "cus_fx",
            "billing_reason": "subscription_cycle",
            "currency": case.currency,
            "amount_paid": case.minor,
            "status": "paid",
            "status_transitions": {"paid_at": 1764000100},
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"metadata": {}, "subscription": "sub_fx"},
            },
        },
    )


def booking_payment(case: Case) -> bytes:
    return event_body(
        id=f"evt_fx_payment_{case.currency}",
        type="payment_intent.succeeded",
        created=1764000200,
        obj={
            "id": "pi_fx",
            "object": "payment_intent",
            "customer": "cus_fx",
            "currency": case.currency,
            "amount": case.minor,
            "amount_received": case.minor,
            "status": "succeeded",
            "metadata": {"ownerId": OWNER["userId"], "bookingId": "bk_fx"},
        },
    )


class FakeHubSpot:
    """HubSpot's batch endpoints as respx routes: every request body checked against our
    models of HubSpot's API, every input answered as written, every request kept."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.ids = count(501)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        for path in (
            "/crm/v3/objects/contacts/batch/upsert",
            "/crm/v3/objects/contacts/batch/update",
            "/crm/v3/objects/notes/batch/create",
        ):
            router.post(f"{HUBSPOT}{path}").mock(side_effect=self.answer)
        # Notes are looked up by crm_sync_note_id before a create: none exist yet.
        router.post(f"{HUBSPOT}/crm/v3/objects/notes/search").mock(
            side_effect=hubspot_answer(200, {"total": 0, "results": []})
        )

    def answer(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        self.requests.append((request.url.path, sent))
        results = [
            {
                "id": str(i["id"]) if "idProperty" not in i and "id" in i else str(next(self.ids)),
                "objectWriteTraceId": i.get("objectWriteTraceId"),
                "properties": i.get("properties", {}),
                "createdAt": NOW,
                "updatedAt": NOW,
                "archived": False,
                **({"new": True} if "idProperty" in i else {}),
            }
            for i in sent["inputs"]
        ]
        payload = {"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}
        return hubspot_answer(200, payload)(request)

    def inputs(self, path: str) -> list[dict[str, Any]]:
        return [i for p, sent in self.requests if p == path for i in sent["inputs"]]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(
        db_url,
        crm_providers="internal,hubspot",
        stripe_webhook_secret=SECRET,
        hubspot=HubSpotSettings(_env_file=None, access_token=TOKEN),  # type: ignore[call-arg]
        pull=PullSettings(_env_file=None, enabled=False),  # type: ignore[call-arg]
    )


@pytest.mark.parametrize("case", CASES, ids=[c.currency for c in CASES])
async def test_an_amount_reaches_the_internal_crm_and_hubspot_in_its_own_minor_unit(
    client, stripe_post, services, case: Case
) -> None:
    with respx.mock(assert_all_called=False) as router:
        hubspot = FakeHubSpot(router)
        assert (await client.post("/api/crm/sync/owner", json=OWNER)).status_code == 200
        for body in (checkout(case), renewal(case), booking_payment(case)):
            assert (await stripe_post(body)).status_code == 200
            await settle(services)

    async with services.sessions() as session:
        membership = await session.scalar(
            select(CrmMembership).where(CrmMembership.user_id == OWNER["userId"])
        )
        activities = {a.activity_id: a for a in await session.scalars(select(CrmActivity))}
    assert membership is not None
    assert membership.plan_price == case.major
    assert membership.last_payment_amount == case.major
    assert (membership.meta or {}).get("currency") == case.currency
    payment = activities[f"activity_evt_fx_payment_{case.currency}"]
    assert payment.meta is not None
    assert (payment.meta["amount"], payment.meta["currency"]) == (case.major, case.currency)
    assert payment.details == f"Payment of {case.shown} received for booking bk_fx."
    renewed = activities["activity_renewal_in_fx"]
    assert renewed.details is not None and renewed.details.startswith(
        f"Renewal payment of {case.shown} received"
    )

    updates = hubspot.inputs("/crm/v3/objects/contacts/batch/update")
    paid = [u["properties"] for u in updates if "membership_last_payment_amount" in u["properties"]]
    assert paid and paid[-1]["membership_last_payment_amount"] == case.hubspot
    assert paid[-1]["membership_price"] == case.hubspot
    notes = [
        n["properties"]["hs_note_body"]
        for n in hubspot.inputs("/crm/v3/objects/notes/batch/create")
    ]
    payment_note = next(n for n in notes if "bk_fx" in n)
    assert f"Payment of {case.shown} received" in payment_note
    assert f"<br>amount: {case.major}<br>" in payment_note
    assert f"<br>currency: {case.currency}<br>" in payment_note


def test_the_issues_kuwaiti_dinars_are_thousandths() -> None:
    """payment_intent.succeeded for 92000 in kwd is 92.000 KWD, not 920.00."""
    event = parse_event(
        event_body(
            id="evt_kwd",
            type="payment_intent.succeeded",
            obj={
                "id": "pi_kwd",
                "object": "payment_intent",
                "currency": "kwd",
                "amount": 92000,
                "amount_received": 92000,
                "metadata": {"ownerId": "u1"},
            },
        )
    )
    [activity] = effects(event, "u1").activities
    assert activity["metadata"]["amount"] == 92.0
    assert activity["details"] == "Payment of 92.000 KWD received."
