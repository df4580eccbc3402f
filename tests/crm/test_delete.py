"""Deleting from the internal CRM: rows are soft-deleted, logged, and hidden from the read API
unless includeDeleted=true."""

from __future__ import annotations

from sqlalchemy import select

from app.providers.internal.models import CrmActivity, CrmContact, CrmEnquiry, CrmProperty

OWNER = {"userId": "u1", "name": "Ann Owner", "email": "ann@example.com"}
PROPERTY = {"propertyId": "p1", "ownerId": "u1", "title": "Sea View Barn", "status": "approved"}
ENQUIRY = {
    "enquiryId": "e1",
    "propertyId": "p1",
    "guestName": "Gus Guest",
    "guestEmail": "gus@example.com",
    "message": "Free in May?",
}


async def test_a_deleted_enquiry_is_soft_deleted_logged_and_hidden(client, ops, services) -> None:
    for kind, body in (("owner", OWNER), ("property", PROPERTY), ("enquiry", ENQUIRY)):
        assert (await client.post(f"/api/crm/sync/{kind}", json=body)).status_code == 200

    response = await client.delete("/api/crm/sync/enquiry", params={"enquiryId": "e1"})

    assert response.status_code == 200, response.text
    assert response.json()["providers"]["internal"]["status"] == "deleted"
    async with services.sessions() as session:
        row = await session.scalar(select(CrmEnquiry).where(CrmEnquiry.enquiry_id == "e1"))
        assert row is not None and row.deleted_at is not None  # kept, marked
        logged = list(
            await session.scalars(
                select(CrmActivity).where(
                    CrmActivity.entity_id == "e1", CrmActivity.activity_type == "deleted"
                )
            )
        )
    assert [a.title for a in logged] == ["Enquiry e1 deleted"]
    listed = await ops.get("/api/crm/enquiries")
    assert listed.json()["enquiries"] == []
    everything = await ops.get("/api/crm/enquiries", params={"includeDeleted": "true"})
    [shown] = everything.json()["enquiries"]
    assert shown["enquiryId"] == "e1" and shown["deletedAt"] is not None


async def test_an_owner_deleted_with_cascade_leaves_the_read_api(client, ops, services) -> None:
    for kind, body in (("owner", OWNER), ("property", PROPERTY), ("enquiry", ENQUIRY)):
        await client.post(f"/api/crm/sync/{kind}", json=body)

    response = await client.delete(
        "/api/crm/sync/owner", params={"userId": "u1", "cascade": "true"}
    )

    assert response.status_code == 200, response.text
    async with services.sessions() as session:
        owner = await session.scalar(select(CrmContact).where(CrmContact.user_id == "u1"))
        listing = await session.scalar(select(CrmProperty).where(CrmProperty.property_id == "p1"))
    assert owner is not None and owner.deleted_at is not None
    assert listing is not None and listing.deleted_at is not None
    assert (await ops.get("/api/crm/contacts/u1")).status_code == 404
    detail = await ops.get("/api/crm/contacts/u1", params={"includeDeleted": "true"})
    assert detail.status_code == 200
    assert detail.json()["contact"]["deletedAt"] is not None
    assert [p["propertyId"] for p in detail.json()["properties"]] == ["p1"]
    owners = await ops.get("/api/crm/contacts", params={"type": "owner"})
    assert owners.json()["contacts"] == []

    back = await client.post("/api/crm/sync/owner", json=OWNER)

    assert back.status_code == 200, back.text
    assert back.json()["providers"]["internal"]["status"] == "synced"
    assert (await ops.get("/api/crm/contacts/u1")).status_code == 200
