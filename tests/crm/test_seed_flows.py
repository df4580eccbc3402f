"""The seeds' verification flows, through the real HTTP API, with CRM_PROVIDERS=internal,mock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.db import transaction
from app.models import SyncLog
from app.providers.internal.models import (
    CrmActivity,
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmInteraction,
    CrmMembership,
    CrmProperty,
    CrmPropertyLink,
)
from app.providers.mock import Faults
from app.records import Kind
from app.sync.accept import load_record
from app.sync.outbox import enqueue
from tests.crm.tables import crm_snapshot
from tests.eventually import eventually

OWNER = {
    "userId": "user_123abc",
    "name": "John Smith",
    "email": "john@example.com",
    "phone": "07700 900123",
}
PROPERTY = {
    "propertyId": 123,
    "ownerId": "user_123abc",
    "title": "Sea View Barn",
    "location": "Cornwall",
    "bedrooms": 4,
    "bathrooms": 2,
    "maxGuests": 8,
    "pricePerNight": 250,
    "status": "approved",
}
ENQUIRY = {
    "enquiryId": "enq_1",
    "propertyId": 123,
    "guestName": "Gus Guest",
    "guestEmail": "Gus@Example.com",
    "guestPhone": "07700 900456",
    "subject": "May half-term",
    "message": "Is it free?",
    "status": "new",
}
BOOKING = {
    "bookingId": "bk_1",
    "propertyId": 123,
    "guestName": "Gus Guest",
    "guestEmail": "gus@example.com",
    "checkIn": "2026-05-01",
    "checkOut": "2026-05-05",
    "guests": 6,
    "totalPrice": 1000,
    "currency": "GBP",
    "status": "confirmed",
}
MEMBERSHIP = {
    "userId": "user_123abc",
    "planTier": "silver",
    "billingCycle": "annual",
    "price": 99,
    "status": "active",
}


async def sync(client: Any, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/crm/sync/{kind}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_owner_sync_creates_an_owner_contact(client, sessions) -> None:
    body = await sync(client, "owner", OWNER)
    assert body["message"] == "Owner synced to CRM successfully"
    assert body["providers"]["internal"]["status"] == "synced"
    async with sessions() as session:
        contact = await session.scalar(
            select(CrmContact).where(CrmContact.user_id == "user_123abc")
        )
    assert contact is not None
    assert body["crmId"] == body["providers"]["internal"]["crmId"] == contact.id
    assert (contact.type, contact.name, contact.email, contact.phone) == (
        "owner",
        "John Smith",
        "john@example.com",
        "+447700900123",
    )


async def test_an_approved_property_makes_an_active_link(client, sessions) -> None:
    owner = await sync(client, "owner", OWNER)
    prop = await sync(client, "property", PROPERTY)
    async with sessions() as session:
        row = await session.scalar(select(CrmProperty).where(CrmProperty.property_id == "123"))
        link = await session.scalar(select(CrmPropertyLink))
    assert row is not None and link is not None
    assert prop["crmId"] == row.id
    assert (row.owner_contact_id, row.title, row.bedrooms, row.guests, row.price_per_night) == (
        owner["crmId"],
        "Sea View Barn",
        4,
        8,
        250,
    )
    assert (link.owner_contact_id, link.crm_property_id, link.link_status) == (
        owner["crmId"],
        row.id,
        "active",
    )

    await sync(client, "property", {"propertyId": 123, "status": "rejected"})
    async with sessions() as session:
        assert await session.scalar(select(CrmPropertyLink.link_status)) == "inactive"


async def test_an_enquiry_creates_guest_enquiry_interaction_and_activity(client, sessions) -> None:
    owner = await sync(client, "owner", OWNER)
    prop = await sync(client, "property", PROPERTY)
    enquiry = await sync(client, "enquiry", ENQUIRY)

    async with sessions() as session:
        guest = await session.scalar(select(CrmContact).where(CrmContact.type == "guest"))
        row = await session.scalar(select(CrmEnquiry))
        interaction = await session.scalar(select(CrmInteraction))
        activity = await session.scalar(
            select(CrmActivity).where(CrmActivity.entity_type == "enquiry")
        )
        count = await session.scalar(select(CrmProperty.enquiry_count))
    assert guest is not None and guest.email == "gus@example.com" and guest.name == "Gus Guest"
    assert row is not None and enquiry["crmId"] == row.id
    assert (row.crm_property_id, row.owner_contact_id, row.guest_contact_id, row.status) == (
        prop["crmId"],
        owner["crmId"],
        guest.id,
        "new",
    )
    assert interaction is not None
    assert (interaction.contact_id, interaction.crm_enquiry_id, interaction.content) == (
        guest.id,
        row.id,
        "Is it free?",
    )
    assert activity is not None and activity.contact_id == owner["crmId"]
    assert activity.entity_id == row.id and activity.activity_type == "created"
    assert count == 1


async def test_the_same_enquiry_sent_twice_changes_nothing(client, services, sessions) -> None:
    for kind, body in (("owner", OWNER), ("property", PROPERTY), ("enquiry", ENQUIRY)):
        await sync(client, kind, body)
    before = await crm_snapshot(sessions)

    again = await client.post("/api/crm/sync/enquiry", json=ENQUIRY)
    assert again.json()["message"] == "Enquiry already synced to CRM"
    assert await crm_snapshot(sessions) == before

    # Delivered again regardless (a forced re-sync, or a worker that lost its lease): the
    # internal CRM is written again and still nothing changes.
    async with transaction(services.sessions) as session:
        record = await load_record(session, Kind.enquiry, "enq_1")
        assert record is not None
        assert await enqueue(session, [record.id], ["internal"], force=True) == 1
    services.kick()
    await _delivered_twice(sessions, "enq_1")
    assert await crm_snapshot(sessions) == before


async def _delivered_twice(sessions: Any, enquiry_id: str) -> None:
    async def twice() -> None:
        async with sessions() as session:
            done = await session.scalar(
                select(func.count())
                .select_from(SyncLog)
                .where(
                    SyncLog.provider == "internal",
                    SyncLog.entity_id == enquiry_id,
                    SyncLog.status == "success",
                )
            )
        assert done == 2

    await eventually(twice, seconds=5)


async def test_both_providers_receive_every_record_each_with_its_own_status(
    client, mock, sessions
) -> None:
    records = [
        ("owner", "userId", OWNER),
        ("property", "propertyId", PROPERTY),
        ("enquiry", "enquiryId", ENQUIRY),
        ("booking", "bookingId", BOOKING),
        ("membership", "userId", MEMBERSHIP),
    ]
    for kind, id_field, body in records:
        await sync(client, kind, body)
        status = await client.get(f"/api/crm/sync/{kind}", params={id_field: body[id_field]})
        providers = status.json()["providers"]
        assert providers["internal"]["status"] == providers["mock"]["status"] == "synced"
        assert len(providers["internal"]["crmId"]) == 36  # a crm_* row's UUID
        assert providers["mock"]["crmId"].startswith("crm_")
        assert status.json()["crmId"] == providers["internal"]["crmId"]  # the first provider's
    assert sorted(kind.value for kind, _ in mock.store) == sorted(kind for kind, _, _ in records)
    async with sessions() as session:
        for model in (CrmProperty, CrmEnquiry, CrmBooking, CrmMembership):
            assert await session.scalar(select(func.count()).select_from(model)) == 1

    # The mock rejects the next change; the internal CRM takes it. Each says so.
    mock.faults = Faults(mode="reject", count=1)
    rejected = await client.post("/api/crm/sync/owner", json={**OWNER, "city": "Truro"})
    assert rejected.status_code == 502
    status = (await client.get("/api/crm/sync/owner", params={"userId": "user_123abc"})).json()
    assert status["syncStatus"] == "failed"
    assert status["providers"]["internal"]["status"] == "synced"
    assert status["providers"]["mock"]["status"] == "failed"
    assert "rejected by request" in status["providers"]["mock"]["lastError"]
    async with sessions() as session:
        assert (
            await session.scalar(select(CrmContact.city).where(CrmContact.user_id == "user_123abc"))
            == "Truro"
        )
