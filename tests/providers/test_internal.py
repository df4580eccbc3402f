"""The internal provider, called as the worker calls it: batches in, rows in the crm_* tables."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from app.providers.base import Action, Delivery, FailureKind, Outcome
from app.providers.internal.models import (
    CrmActivity,
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmInteraction,
    CrmMembership,
    CrmNote,
    CrmProperty,
    CrmPropertyLink,
)
from app.providers.internal.provider import InternalProvider
from app.records import SPECS, Kind, normalise
from tests.crm.tables import crm_snapshot

_jobs = itertools.count(1)


def delivery(kind: Kind, data: dict[str, Any], parent: str | None = None) -> Delivery:
    """A delivery as the worker makes it: the record validated and normalised like the API
    does, with its parent's CRM id at this provider."""
    spec = SPECS[kind]
    fields = spec.model.model_validate(data).model_dump(mode="json", exclude_unset=True)
    return Delivery(
        job_id=next(_jobs),
        kind=kind,
        record_id=str(fields[spec.id_field]),
        data=normalise(spec, fields, "GB"),
        crm_id=None,
        parent_crm_id=parent,
        idempotency_key="test",
    )


@pytest.fixture
def internal(sessions: Any) -> InternalProvider:
    return InternalProvider(sessions)


async def one(provider: InternalProvider, d: Delivery) -> Outcome:
    [outcome] = await provider.deliver(d.kind, [d])
    assert outcome.ok, outcome.error and outcome.error.message
    return outcome


async def count(sessions: Any, model: type[Any], *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def owner_and_property(
    internal: InternalProvider, status: str = "approved"
) -> tuple[str, str]:
    owner = await one(
        internal,
        delivery(Kind.owner, {"userId": "u1", "name": "Olive Owner", "email": "o@x.com"}),
    )
    prop = await one(
        internal,
        delivery(
            Kind.property,
            {"propertyId": 123, "ownerId": "u1", "title": "Sea View Barn", "status": status},
            parent=owner.crm_id,
        ),
    )
    assert owner.crm_id and prop.crm_id
    return owner.crm_id, prop.crm_id


ENQUIRY = {
    "enquiryId": "e1",
    "propertyId": "123",
    "guestName": "Gus Guest",
    "guestEmail": "Gus@Example.com",
    "guestPhone": "07700 900123",
    "subject": "May half-term",
    "message": "Is it free?",
}


async def test_an_owner_becomes_an_owner_contact_keyed_by_user_id(internal, sessions) -> None:
    outcome = await one(
        internal,
        delivery(
            Kind.owner,
            {
                "userId": "user_123abc",
                "firstName": "John",
                "lastName": "Smith",
                "email": "John@Example.com",
                "phone": "07700 900123",
                "city": "Truro",
                "signupDate": "2025-01-05",
                "customFields": {"referral": "friend"},
            },
        ),
    )
    assert outcome.action is Action.create
    async with sessions() as session:
        contact = await session.scalar(select(CrmContact))
    assert contact is not None
    assert outcome.crm_id == contact.id and len(contact.id) == 36  # the row's UUID
    assert (contact.user_id, contact.type, contact.status) == ("user_123abc", "owner", "pending")
    assert (contact.name, contact.email, contact.phone) == (
        "John Smith",
        "john@example.com",
        "+447700900123",
    )
    assert contact.signup_date is not None and contact.signup_date.isoformat() == (
        "2025-01-05T00:00:00+00:00"
    )
    assert contact.meta == {"customFields": {"referral": "friend"}}
    assert await count(sessions, CrmActivity, CrmActivity.activity_type == "created") == 1


async def test_delivering_a_batch_again_changes_nothing(internal, sessions) -> None:
    owner_id, property_id = await owner_and_property(internal)
    batch = [
        delivery(Kind.enquiry, ENQUIRY, parent=property_id),
        delivery(Kind.enquiry, {**ENQUIRY, "enquiryId": "e2"}, parent=property_id),
    ]
    first = await internal.deliver(Kind.enquiry, batch)
    before = await crm_snapshot(sessions)

    again = await internal.deliver(Kind.enquiry, batch)
    assert await crm_snapshot(sessions) == before
    assert [o.crm_id for o in again] == [o.crm_id for o in first]
    assert [o.action for o in again] == [Action.update, Action.update]
    assert [o.response["changed"] for o in again] == [False, False]
    for kind, data, parent in [
        (Kind.owner, {"userId": "u1", "name": "Olive Owner", "email": "o@x.com"}, None),
        (Kind.property, {"propertyId": 123, "ownerId": "u1", "title": "Sea View Barn",
                         "status": "approved"}, owner_id),
    ]:  # fmt: skip
        outcome = await one(internal, delivery(kind, data, parent))
        assert outcome.response["changed"] is False
    assert await crm_snapshot(sessions) == before


async def test_an_enquiry_makes_the_guest_the_enquiry_an_interaction_and_an_activity(
    internal, sessions
) -> None:
    owner_id, property_id = await owner_and_property(internal)
    outcome = await one(internal, delivery(Kind.enquiry, ENQUIRY, parent=property_id))

    async with sessions() as session:
        enquiry = await session.scalar(select(CrmEnquiry))
        guest = await session.scalar(select(CrmContact).where(CrmContact.type == "guest"))
        prop = await session.get(CrmProperty, property_id)
        interaction = await session.scalar(select(CrmInteraction))
        activity = await session.scalar(
            select(CrmActivity).where(CrmActivity.entity_type == "enquiry")
        )
    assert enquiry is not None and guest is not None and prop is not None
    assert outcome.crm_id == enquiry.id
    assert (guest.email, guest.name, guest.phone) == (
        "gus@example.com",
        "Gus Guest",
        "+447700900123",
    )
    assert enquiry.status == "new"
    assert (enquiry.crm_property_id, enquiry.owner_contact_id, enquiry.guest_contact_id) == (
        property_id,
        owner_id,
        guest.id,
    )
    assert prop.enquiry_count == 1
    assert interaction is not None
    assert (interaction.contact_id, interaction.crm_enquiry_id, interaction.type) == (
        guest.id,
        enquiry.id,
        "message",
    )
    assert (interaction.direction, interaction.content) == ("inbound", "Is it free?")
    assert activity is not None
    assert (activity.contact_id, activity.entity_id, activity.activity_type) == (
        owner_id,
        enquiry.id,
        "created",
    )
    assert activity.title == "New enquiry from Gus Guest for Sea View Barn"


async def test_a_returning_guest_is_found_by_email_and_counts_add_up(internal, sessions) -> None:
    _, property_id = await owner_and_property(internal)
    await one(internal, delivery(Kind.enquiry, {**ENQUIRY, "guestPhone": None}, property_id))
    second = {**ENQUIRY, "enquiryId": "e2", "guestEmail": "GUS@example.com", "guestName": "G"}
    await one(internal, delivery(Kind.enquiry, second, property_id))
    # Two enquiries from one new guest in the same batch make one contact too.
    await internal.deliver(
        Kind.enquiry,
        [
            delivery(Kind.enquiry, {**ENQUIRY, "enquiryId": f"n{i}", "guestEmail": "new@x.com"},
                     property_id)
            for i in range(3)
        ],
    )  # fmt: skip

    async with sessions() as session:
        guests = list(await session.scalars(select(CrmContact).where(CrmContact.type == "guest")))
        prop = await session.get(CrmProperty, property_id)
    assert sorted(g.email for g in guests) == ["gus@example.com", "new@x.com"]
    gus = next(g for g in guests if g.email == "gus@example.com")
    assert gus.name == "Gus Guest"  # known names are kept, not overwritten
    assert gus.phone == "+447700900123"  # what was missing is filled in
    assert prop is not None and prop.enquiry_count == 5


async def test_an_updated_enquiry_is_updated_not_counted_again(internal, sessions) -> None:
    _, property_id = await owner_and_property(internal)
    await one(internal, delivery(Kind.enquiry, ENQUIRY, property_id))
    changed = await one(
        internal, delivery(Kind.enquiry, {**ENQUIRY, "message": "Or June?"}, property_id)
    )
    assert changed.action is Action.update
    assert changed.response["changedFields"] == ["message"]
    async with sessions() as session:
        enquiry = await session.scalar(select(CrmEnquiry))
        prop = await session.get(CrmProperty, property_id)
    assert enquiry is not None and enquiry.message == "Or June?"
    assert prop is not None and prop.enquiry_count == 1
    assert await count(sessions, CrmInteraction) == 1


async def test_the_website_moves_an_enquiry_forward_never_back(internal, sessions) -> None:
    _, property_id = await owner_and_property(internal)
    await one(internal, delivery(Kind.enquiry, {**ENQUIRY, "status": "qualified"}, property_id))
    await one(internal, delivery(Kind.enquiry, {**ENQUIRY, "status": "new"}, property_id))
    async with sessions() as session:
        assert await session.scalar(select(CrmEnquiry.status)) == "qualified"
    await one(internal, delivery(Kind.enquiry, {**ENQUIRY, "status": "converted"}, property_id))
    async with sessions() as session:
        assert await session.scalar(select(CrmEnquiry.status)) == "converted"
        changes = list(
            await session.scalars(
                select(CrmActivity.meta).where(CrmActivity.activity_type == "status_changed")
            )
        )
    assert changes == [{"from": "qualified", "to": "converted"}]


@pytest.mark.parametrize(
    ("listing", "link"),
    [("approved", "active"), ("pending", "pending"), ("rejected", "inactive")],
)
async def test_a_property_link_follows_approval(internal, sessions, listing, link) -> None:
    owner_id, property_id = await owner_and_property(internal, status=listing)
    async with sessions() as session:
        row = await session.scalar(select(CrmPropertyLink))
    assert row is not None
    assert (row.owner_contact_id, row.crm_property_id, row.link_status) == (
        owner_id,
        property_id,
        link,
    )


async def test_a_link_changes_with_the_listing_and_the_owner(internal, sessions) -> None:
    first_owner, property_id = await owner_and_property(internal, status="pending")
    approved = await one(
        internal,
        delivery(
            Kind.property,
            {"propertyId": 123, "ownerId": "u1", "title": "Sea View Barn", "status": "approved"},
            parent=first_owner,
        ),
    )
    assert approved.response["linkStatus"] == "active"
    second = await one(internal, delivery(Kind.owner, {"userId": "u2", "name": "New Owner"}))
    await one(
        internal,
        delivery(
            Kind.property,
            {"propertyId": 123, "ownerId": "u2", "title": "Sea View Barn", "status": "approved"},
            parent=second.crm_id,
        ),
    )
    async with sessions() as session:
        links = {
            link.owner_contact_id: link.link_status
            for link in await session.scalars(select(CrmPropertyLink))
        }
        prop = await session.get(CrmProperty, property_id)
    assert links == {first_owner: "inactive", second.crm_id: "active"}
    assert prop is not None and prop.owner_contact_id == second.crm_id


async def test_owner_status_maps_to_the_contact_and_is_logged(internal, sessions) -> None:
    outcome = await one(internal, delivery(Kind.owner, {"userId": "u1", "status": "active"}))
    await one(internal, delivery(Kind.owner, {"userId": "u1", "status": "suspended"}))
    async with sessions() as session:
        contact = await session.get(CrmContact, outcome.crm_id)
        logged = await session.scalar(
            select(CrmActivity).where(CrmActivity.activity_type == "status_changed")
        )
    assert contact is not None and contact.status == "suspended"
    assert logged is not None
    assert (logged.contact_id, logged.meta) == (contact.id, {"from": "active", "to": "suspended"})


async def test_bookings_and_memberships_land_with_their_parents(internal, sessions) -> None:
    owner_id, property_id = await owner_and_property(internal)
    booking = await one(
        internal,
        delivery(
            Kind.booking,
            {
                "bookingId": "b1",
                "propertyId": "123",
                "guestName": "Gus",
                "guestEmail": "gus@example.com",
                "checkIn": "2026-05-01",
                "checkOut": "2026-05-05",
                "guests": 6,
                "totalPrice": 1000.5,
                "currency": "GBP",
                "status": "confirmed",
                "paymentStatus": "deposit_paid",
            },
            parent=property_id,
        ),
    )
    membership = await one(
        internal,
        delivery(
            Kind.membership,
            {
                "userId": "u1",
                "planTier": "gold",
                "billingCycle": "annual",
                "price": 199,
                "status": "active",
                "stripeCustomerId": "cus_1",
                "stripeSubscriptionId": "sub_1",
                "startDate": "2026-01-01T09:30:00+01:00",
                "lastPaymentAmount": 199,
                "autoRenew": True,
            },
            parent=owner_id,
        ),
    )
    async with sessions() as session:
        b = await session.get(CrmBooking, booking.crm_id)
        m = await session.get(CrmMembership, membership.crm_id)
        guest = await session.scalar(select(CrmContact).where(CrmContact.type == "guest"))
    assert b is not None and guest is not None
    assert (b.crm_property_id, b.owner_contact_id, b.guest_contact_id) == (
        property_id,
        owner_id,
        guest.id,
    )
    assert (str(b.check_in), b.total_price, b.currency) == ("2026-05-01", 1000.5, "gbp")
    assert m is not None
    assert (m.contact_id, m.user_id, m.plan_tier, m.status, m.plan_price) == (
        owner_id,
        "u1",
        "gold",
        "active",
        199,
    )
    assert m.start_date is not None and m.start_date.isoformat() == "2026-01-01T08:30:00+00:00"
    assert (m.auto_renew, m.payment_failure_count) == (True, 0)

    await one(
        internal,
        delivery(
            Kind.membership,
            {"userId": "u1", "planTier": "gold", "status": "past_due", "paymentFailureCount": 1},
            parent=owner_id,
        ),
    )
    async with sessions() as session:
        m = await session.get(CrmMembership, membership.crm_id)
        logged = await session.scalar(
            select(CrmActivity.meta).where(
                CrmActivity.entity_type == "membership",
                CrmActivity.activity_type == "status_changed",
            )
        )
    assert m is not None and (m.status, m.payment_failure_count) == ("past_due", 1)
    assert logged == {"from": "active", "to": "past_due"}


async def test_notes_and_activities_from_stripe_effects(internal, sessions) -> None:
    owner_id, _ = await owner_and_property(internal)
    await one(
        internal,
        delivery(Kind.membership, {"userId": "u1", "status": "active"}, parent=owner_id),
    )
    note_delivery = delivery(
        Kind.note,
        {
            "noteId": "evt_1-note",
            "ownerId": "u1",
            "noteType": "issue",
            "priority": "high",
            "content": "Payment failed: card declined",
            "reminderDate": "2026-12-01",
        },
        parent=owner_id,
    )
    activity_delivery = delivery(
        Kind.activity,
        {
            "activityId": "evt_1",
            "ownerId": "u1",
            "entityType": "membership",
            "activityType": "payment_failure",
            "title": "Payment failed",
            "details": "card declined",
            "metadata": {"amount": 150.0, "currency": "gbp", "bookingId": "b9"},
            "occurredAt": "2026-11-20T10:00:00Z",
        },
        parent=owner_id,
    )
    note = await one(internal, note_delivery)
    assert note.action is Action.note
    activity = await one(internal, activity_delivery)
    async with sessions() as session:
        n = await session.get(CrmNote, note.crm_id)
        a = await session.get(CrmActivity, activity.crm_id)
        membership_id = await session.scalar(select(CrmMembership.id))
        contact = await session.get(CrmContact, owner_id)
    assert n is not None
    assert (n.contact_id, n.note_type, n.priority, n.content) == (
        owner_id,
        "issue",
        "high",
        "Payment failed: card declined",
    )
    assert n.reminder_date is not None and n.reminder_date.isoformat().startswith("2026-12-01")
    assert a is not None
    assert (a.contact_id, a.entity_type, a.entity_id, a.activity_type) == (
        owner_id,
        "membership",
        membership_id,
        "payment_failure",
    )
    assert a.meta == {"amount": 150.0, "currency": "gbp", "bookingId": "b9"}
    assert a.occurred_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert contact is not None and contact.last_activity_date is not None

    # Both again (a worker that lost its lease): nothing new.
    before = await crm_snapshot(sessions)
    assert (await one(internal, note_delivery)).crm_id == note.crm_id
    assert (await one(internal, activity_delivery)).crm_id == activity.crm_id
    assert await crm_snapshot(sessions) == before


async def test_a_record_whose_parent_is_gone_is_rejected_alone(internal, sessions) -> None:
    owner = await one(internal, delivery(Kind.owner, {"userId": "u1"}))
    outcomes = await internal.deliver(
        Kind.property,
        [
            delivery(Kind.property, {"propertyId": "p1", "ownerId": "u1"}, parent=owner.crm_id),
            delivery(Kind.property, {"propertyId": "p2", "ownerId": "gone"}, parent="no-such-id"),
            delivery(Kind.property, {"propertyId": "p3", "ownerId": "u1"}, parent=owner.crm_id),
        ],
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert error is not None and error.kind is FailureKind.rejected
    assert "owner contact no-such-id is not in the internal CRM" in error.message
    assert await count(sessions, CrmProperty) == 2


async def test_a_value_too_large_to_store_is_rejected_alone(internal, sessions) -> None:
    # The API refuses such a price at accept (app.records); a snapshot stored before that
    # bound still reaches the provider, which must refuse it alone (built here without it).
    owner = await one(internal, delivery(Kind.owner, {"userId": "u1"}))
    too_large = dataclasses.replace(
        delivery(Kind.property, {"propertyId": "p1"}, owner.crm_id),
        data={"propertyId": "p1", "pricePerNight": 1e15},
    )
    outcomes = await internal.deliver(
        Kind.property,
        [
            too_large,
            delivery(Kind.property, {"propertyId": "p2", "pricePerNight": 99.999}, owner.crm_id),
        ],
    )
    assert [o.ok for o in outcomes] == [False, True]
    assert outcomes[0].error is not None and "pricePerNight" in outcomes[0].error.message
    async with sessions() as session:
        assert await session.scalar(select(CrmProperty.price_per_night)) == 100.0


async def test_a_row_the_database_refuses_fails_alone(internal, sessions, database_url) -> None:
    # The API refuses NUL before it gets this far; the provider must still cope if a value
    # the database refuses ever reaches it (built here without the API's validation).
    refused = dataclasses.replace(
        delivery(Kind.owner, {"userId": "u2"}), data={"userId": "u2", "name": "Bad\x00Name"}
    )
    outcomes = await internal.deliver(
        Kind.owner,
        [
            delivery(Kind.owner, {"userId": "u1", "name": "Fine"}),
            refused,
            delivery(Kind.owner, {"userId": "u3", "name": "Also fine"}),
        ],
    )
    if not database_url.startswith("postgresql"):  # SQLite stores a NUL in text
        assert [o.ok for o in outcomes] == [True, True, True]
        return
    # PostgreSQL refuses it: that record alone fails, as the record's problem.
    assert [o.ok for o in outcomes] == [True, False, True]
    error = outcomes[1].error
    assert error is not None and error.kind is FailureKind.rejected
    assert error.message.startswith("internal: database refused the owner")
    assert await count(sessions, CrmContact) == 2


async def test_a_large_batch_is_one_call(internal, sessions) -> None:
    batch = [
        delivery(Kind.owner, {"userId": f"u{i}", "email": f"owner{i}@example.com"})
        for i in range(InternalProvider.batch_size)
    ]
    outcomes = await internal.deliver(Kind.owner, batch)
    assert all(o.ok and o.action is Action.create for o in outcomes)
    assert len({o.crm_id for o in outcomes}) == len(batch)
    assert await count(sessions, CrmContact) == len(batch)


async def test_two_workers_meeting_one_new_guest_make_one_contact(internal, sessions) -> None:
    _, property_id = await owner_and_property(internal)
    other = InternalProvider(sessions)
    await asyncio.gather(
        internal.deliver(Kind.enquiry, [delivery(Kind.enquiry, ENQUIRY, property_id)]),
        other.deliver(
            Kind.enquiry, [delivery(Kind.enquiry, {**ENQUIRY, "enquiryId": "e2"}, property_id)]
        ),
    )
    assert await count(sessions, CrmContact, CrmContact.type == "guest") == 1
    assert await count(sessions, CrmEnquiry) == 2
    async with sessions() as session:
        assert await session.scalar(select(CrmProperty.enquiry_count)) == 2


async def test_check_says_whether_the_tables_answer(internal) -> None:
    assert await internal.check() is True
