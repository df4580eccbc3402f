"""The HubSpot adapter against the fake HubSpot as strict as HubSpot (issue 12, push side):
dates as the calendar day at midnight UTC, a refused batch isolated to its bad inputs, CRM ids
that are gone (deleted, merged) found again, notes never made twice, `setup`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.fakes.common import FaultPlan
from app.fakes.hubspot import FakeHubSpot
from app.providers.hubspot import properties
from app.providers.hubspot.client import HubSpotClient
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.hubspot.setup import run_setup
from app.providers.ratelimit import LocalRateLimiter
from app.records import Kind
from app.settings import HubSpotSettings
from tests.providers.conftest import TOKEN, delivery

BASE = "http://fake-hubspot"


def settings() -> HubSpotSettings:
    return HubSpotSettings(_env_file=None, access_token=TOKEN, base_url=BASE)  # type: ignore[call-arg]


@pytest.fixture
def fake() -> FakeHubSpot:
    return FakeHubSpot(rate_limit=10_000, token=TOKEN)


@pytest.fixture
async def hubspot(fake: FakeHubSpot) -> AsyncIterator[HubSpotProvider]:
    transport = httpx.ASGITransport(app=fake.asgi())
    provider = HubSpotProvider(settings(), LocalRateLimiter("t", 10_000), transport=transport)
    yield provider
    await provider.aclose()


def midnight(day: str) -> str:
    return str(int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000))


def contact(fake: FakeHubSpot, crm_id: str) -> dict[str, Any]:
    return fake.store.objects["contacts"][crm_id]["properties"]


async def owner(hubspot: HubSpotProvider, user_id: str, email: str, **data: Any) -> str:
    [out] = await hubspot.deliver(
        Kind.owner, [delivery(Kind.owner, user_id, {"userId": user_id, "email": email, **data})]
    )
    assert out.ok, out.error and out.error.message
    assert out.crm_id is not None
    return out.crm_id


async def test_dates_land_on_the_calendar_day_the_website_meant(
    hubspot: HubSpotProvider, fake: FakeHubSpot
) -> None:
    contact_id = await owner(hubspot, "u1", "d@example.com", signupDate="2026-03-14T18:45:00Z")
    membership = {
        "userId": "u1",
        "startDate": "2026-05-01T09:30:00Z",
        "renewalDate": "2027-05-01T00:30:00+02:00",
        "lastPaymentDate": "2026-05-01T09:30:00+02:00",  # a datetime keeps the instant
    }
    [out] = await hubspot.deliver(
        Kind.membership,
        [delivery(Kind.membership, "u1", membership, parent_crm_id=contact_id)],
    )

    assert out.ok, out.error and out.error.message
    stored = contact(fake, contact_id)
    assert stored["website_signup_date"] == midnight("2026-03-14")
    assert stored["membership_start_date"] == midnight("2026-05-01")
    assert stored["membership_renewal_date"] == midnight("2027-05-01")  # not 30 April
    assert stored["membership_last_payment_date"] == str(
        int(datetime(2026, 5, 1, 7, 30, tzinfo=UTC).timestamp() * 1000)
    )


async def test_the_fake_refuses_a_date_that_is_not_midnight_utc(fake: FakeHubSpot) -> None:
    details = fake.registry.problems(
        "contacts",
        {
            "website_signup_date": str(
                int(datetime(2026, 3, 14, 18, 45, tzinfo=UTC).timestamp() * 1000)
            )
        },
    )
    assert [d["error"] for d in details] == ["INVALID_DATE"]


async def test_two_bad_options_in_four_listings_fail_only_those_two(
    hubspot: HubSpotProvider, fake: FakeHubSpot
) -> None:
    statuses = ["published", "on-hold", "draft", "sold"]  # on-hold and sold: not options
    listings = [
        delivery(
            Kind.property,
            f"p{n}",
            {"propertyId": f"p{n}", "title": f"Villa {n}", "status": s},
            job_id=100 + n,
        )
        for n, s in enumerate(statuses)
    ]

    outcomes = await hubspot.deliver(Kind.property, listings)

    assert [o.ok for o in outcomes] == [True, False, True, False]
    for bad, value in ((outcomes[1], "on-hold"), (outcomes[3], "sold")):
        assert bad.error is not None
        assert "INVALID_OPTION" in bad.error.message and value in bad.error.message
    stored = {
        o["properties"]["website_property_id"] for o in fake.store.objects["listings"].values()
    }
    assert stored == {"p0", "p2"}


async def test_a_membership_after_its_contact_was_deleted_is_synced(
    hubspot: HubSpotProvider, fake: FakeHubSpot
) -> None:
    contact_id = await owner(hubspot, "u2", "gone@example.com")
    fake.store.objects["contacts"].pop(contact_id)  # deleted in HubSpot
    for index in fake.store.unique.values():
        for value in [v for v, i in index.items() if i == contact_id]:
            del index[value]

    [out] = await hubspot.deliver(
        Kind.membership,
        [
            delivery(
                Kind.membership,
                "u2",
                {"userId": "u2", "planTier": "gold"},
                parent_crm_id=contact_id,
            )
        ],
    )

    assert out.ok, out.error and out.error.message
    assert out.crm_id != contact_id
    assert contact(fake, str(out.crm_id))["membership_tier"] == "gold"
    assert contact(fake, str(out.crm_id))["website_user_id"] == "u2"
    # The owner's next change finds that contact by its user id: one contact, with the email.
    [again] = await hubspot.deliver(
        Kind.owner,
        [
            delivery(
                Kind.owner, "u2", {"userId": "u2", "email": "gone@example.com"}, crm_id=contact_id
            )
        ],
    )
    assert (again.ok, again.crm_id) == (True, out.crm_id)
    assert contact(fake, str(out.crm_id))["email"] == "gone@example.com"


async def test_a_membership_after_a_merge_is_synced_on_the_survivor(
    hubspot: HubSpotProvider, fake: FakeHubSpot
) -> None:
    merged_away = await owner(hubspot, "u3", "old@example.com")
    survivor = await owner(hubspot, "u4", "new@example.com")
    fake.merge("contacts", survivor, merged_away)

    [out] = await hubspot.deliver(
        Kind.membership,
        [
            delivery(
                Kind.membership,
                "u3",
                {"userId": "u3", "planTier": "silver"},
                parent_crm_id=merged_away,
            )
        ],
    )

    assert (out.ok, out.crm_id) == (True, survivor)
    assert contact(fake, survivor)["membership_tier"] == "silver"


async def test_a_note_on_a_merged_contact_lands_on_the_survivor(
    hubspot: HubSpotProvider, fake: FakeHubSpot
) -> None:
    merged_away = await owner(hubspot, "u5", "n-old@example.com")
    survivor = await owner(hubspot, "u6", "n-new@example.com")
    fake.merge("contacts", survivor, merged_away)
    note = {"noteId": "nt1", "ownerId": "u5", "content": "Called"}

    [out] = await hubspot.deliver(
        Kind.note, [delivery(Kind.note, "nt1", note, parent_crm_id=merged_away)]
    )

    assert out.ok, out.error and out.error.message
    assert ("notes", str(out.crm_id), "?", survivor, 202) in fake.store.associations


async def test_a_lost_notes_create_answer_makes_exactly_one_note(
    hubspot: HubSpotProvider, fake: FakeHubSpot
) -> None:
    contact_id = await owner(hubspot, "u7", "notes@example.com")
    note = delivery(
        Kind.note,
        "nt2",
        {"noteId": "nt2", "ownerId": "u7", "content": "Urgent", "priority": "high"},
        parent_crm_id=contact_id,
    )
    # HubSpot makes the note, then the answer is lost (a 502 after processing).
    fake.state.faults = FaultPlan(
        mode="error",
        count=1,
        when="after",
        status=502,
        path_prefix="/crm/v3/objects/notes/batch/create",
    )
    [lost] = await hubspot.deliver(Kind.note, [note])
    assert not lost.ok
    [retried] = await hubspot.deliver(Kind.note, [note])

    assert retried.ok, retried.error and retried.error.message
    notes = list(fake.store.objects["notes"].values())
    assert len(notes) == 1
    assert retried.crm_id == notes[0]["id"]


async def test_setup_creates_everything_once_then_reports_drift() -> None:
    fake = FakeHubSpot(rate_limit=10_000, token=TOKEN, seeded=False)
    client = HubSpotClient(
        settings(), LocalRateLimiter("s", 10_000), transport=httpx.ASGITransport(app=fake.asgi())
    )
    custom = [d for d in properties.definitions(settings()) if d.custom]
    try:
        before = await run_setup(client, settings(), check=True)
        first = await run_setup(client, settings())
        second = await run_setup(client, settings())
        fake.registry.properties["listings"]["listing_status"]["options"].pop()
        fake.registry.properties["contacts"]["membership_price"]["type"] = "string"
        drifted = await run_setup(client, settings(), check=True)
    finally:
        await client.aclose()

    assert not before.ok and len(before.missing) == len(custom) + 4  # and a group per object
    assert len(first.created) == len(custom) + 4 and first.ok
    assert len(fake.registry.created) == len(custom)
    assert second.created == [] and second.ok
    assert sorted(d.split(":")[0] for d in drifted.drift) == [
        "0-420 listing_status",
        "contacts membership_price",
    ]
    assert "type string (want number)" in " ".join(drifted.drift)
