"""The TreadSoft adapter's requests, pinned with respx: the seed's contract plus idempotency."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from app.providers.base import Action, FailureKind
from app.providers.treadsoft import TreadSoftProvider
from app.records import Kind
from app.settings import TreadSoftSettings
from tests.providers.conftest import body, delivery

URL = "https://api.treadsoft.example"
KEY = "ts-live-key-abcdef123456"
SECRET = "ts-live-secret-654321fedcba"


@pytest.fixture
async def treadsoft() -> AsyncIterator[TreadSoftProvider]:
    settings = TreadSoftSettings(_env_file=None, url=URL, key=KEY, secret=SECRET)  # type: ignore[call-arg]
    provider = TreadSoftProvider(settings)
    yield provider
    await provider.aclose()


OWNER = {
    "userId": "user_123abc",
    "name": "John Smith",
    "email": "john@example.com",
    "phone": "+447700900123",
    "companyName": "Smith Properties Ltd",
    "membershipStatus": "active",
}


@respx.mock
async def test_a_new_owner_is_looked_up_then_created_with_the_seed_headers(treadsoft) -> None:
    lookup = respx.get(f"{URL}/api/v1/contacts", params={"website_id": "user_123abc"}).mock(
        return_value=httpx.Response(200, json={"data": []})
    )
    create = respx.post(f"{URL}/api/v1/contacts").mock(
        return_value=httpx.Response(201, json={"id": "crm_contact_456def"})
    )
    owner = delivery(Kind.owner, "user_123abc", OWNER, job_id=1, idempotency_key="treadsoft-1-ab")

    [outcome] = await treadsoft.deliver(Kind.owner, [owner])

    assert lookup.call_count == 1
    request = create.calls[0].request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-api-secret"] == SECRET
    assert request.headers["idempotency-key"] == "treadsoft-1-ab"
    assert body(request) == {
        "firstName": "John",
        "lastName": "Smith",
        "email": "john@example.com",
        "phone": "+447700900123",
        "companyName": "Smith Properties Ltd",
        "role": "owner",
        "membershipStatus": "active",
        "custom_fields": {"website_id": "user_123abc", "website_kind": "owner"},
    }
    assert (outcome.crm_id, outcome.action, outcome.ok) == (
        "crm_contact_456def",
        Action.create,
        True,
    )
    assert KEY not in str(outcome.request) and SECRET not in str(outcome.request)


@respx.mock
async def test_a_create_whose_answer_was_lost_is_found_by_website_id_not_made_again(
    treadsoft,
) -> None:
    respx.get(f"{URL}/api/v1/contacts").mock(
        return_value=httpx.Response(
            200,
            json={"data": [{"id": "ts_9", "custom_fields": {"website_id": "user_123abc"}}]},
        )
    )
    create = respx.post(f"{URL}/api/v1/contacts")
    update = respx.put(f"{URL}/api/v1/contacts/ts_9").mock(
        return_value=httpx.Response(200, json={"id": "ts_9"})
    )

    [outcome] = await treadsoft.deliver(Kind.owner, [delivery(Kind.owner, "user_123abc", OWNER)])

    assert create.call_count == 0
    assert update.call_count == 1
    assert (outcome.crm_id, outcome.action) == ("ts_9", Action.update)


@respx.mock
async def test_a_known_property_is_updated_by_id_with_its_owner(treadsoft) -> None:
    update = respx.put(f"{URL}/api/v1/properties/ts_p1").mock(
        return_value=httpx.Response(200, json={"data": {"id": "ts_p1"}})
    )
    prop = delivery(
        Kind.property,
        "123",
        {"propertyId": "123", "title": "Sea View Barn", "bedrooms": 4, "status": "approved"},
        crm_id="ts_p1",
        parent_crm_id="ts_c1",
    )

    [outcome] = await treadsoft.deliver(Kind.property, [prop])

    assert body(update.calls[0].request) == {
        "title": "Sea View Barn",
        "bedrooms": 4,
        "status": "approved",
        "ownerId": "ts_c1",
        "custom_fields": {"website_id": "123", "website_kind": "property"},
    }
    assert (outcome.crm_id, outcome.action) == ("ts_p1", Action.update)


@respx.mock
async def test_a_membership_updates_the_owners_contact(treadsoft) -> None:
    update = respx.put(f"{URL}/api/v1/contacts/ts_c1").mock(
        return_value=httpx.Response(200, json={"id": "ts_c1"})
    )
    membership = delivery(
        Kind.membership,
        "u1",
        {"userId": "u1", "planTier": "gold", "status": "active", "price": 99.0},
        parent_crm_id="ts_c1",
    )

    [outcome] = await treadsoft.deliver(Kind.membership, [membership])

    assert body(update.calls[0].request) == {
        "membershipStatus": "active",
        "membershipTier": "gold",
        "custom_fields": {"price": 99.0, "website_id": "u1", "website_kind": "owner"},
    }
    assert outcome.crm_id == "ts_c1"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (
            httpx.Response(422, json={"error": "email: invalid", "field": "email"}),
            FailureKind.rejected,
        ),
        (httpx.Response(503, json={"error": "maintenance"}), FailureKind.transient),
        (httpx.Response(429, headers={"Retry-After": "7"}, json={}), FailureKind.rate_limited),
        (httpx.Response(401, json={"error": f"bad key {KEY}"}), FailureKind.unauthorized),
        (httpx.ReadTimeout("slow"), FailureKind.timeout),
        (httpx.RemoteProtocolError("dropped"), FailureKind.transient),
    ],
)
@respx.mock
async def test_failures_are_judged_by_kind_and_never_show_secrets(treadsoft, answer, kind) -> None:
    respx.get(f"{URL}/api/v1/contacts").mock(return_value=httpx.Response(200, json={"data": []}))
    route = respx.post(f"{URL}/api/v1/contacts")
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)

    [outcome] = await treadsoft.deliver(Kind.owner, [delivery(Kind.owner, "u1", OWNER)])

    assert outcome.error is not None and outcome.error.kind is kind
    assert KEY not in outcome.error.message and SECRET not in outcome.error.message
    if kind is FailureKind.rate_limited:
        assert outcome.error.retry_after == 7.0
    if kind is FailureKind.rejected:
        assert "email: invalid" in outcome.error.message


@respx.mock
async def test_enquiries_and_bookings_carry_their_property_and_website_id(treadsoft) -> None:
    respx.get(f"{URL}/api/v1/enquiries").mock(return_value=httpx.Response(200, json=[]))
    respx.get(f"{URL}/api/v1/bookings").mock(return_value=httpx.Response(200, json={"data": []}))
    enquiries = respx.post(f"{URL}/api/v1/enquiries").mock(
        return_value=httpx.Response(201, json={"id": "ts_e1"})
    )
    bookings = respx.post(f"{URL}/api/v1/bookings").mock(
        return_value=httpx.Response(201, json={"id": "ts_b1"})
    )
    enquiry = delivery(
        Kind.enquiry,
        "e1",
        {"enquiryId": "e1", "guestName": "Gus", "guestEmail": "g@example.com", "subject": "May"},
        parent_crm_id="ts_p1",
    )
    booking = delivery(
        Kind.booking,
        "b1",
        {"bookingId": "b1", "checkIn": "2026-05-01", "totalPrice": 1000.0, "currency": "gbp"},
        parent_crm_id="ts_p1",
    )

    [e] = await treadsoft.deliver(Kind.enquiry, [enquiry])
    [b] = await treadsoft.deliver(Kind.booking, [booking])

    assert body(enquiries.calls[0].request) == {
        "guestName": "Gus",
        "guestEmail": "g@example.com",
        "subject": "May",
        "source": "website",
        "propertyId": "ts_p1",
        "custom_fields": {"website_id": "e1", "website_kind": "enquiry"},
    }
    assert body(bookings.calls[0].request) == {
        "checkIn": "2026-05-01",
        "totalPrice": 1000.0,
        "currency": "GBP",
        "propertyId": "ts_p1",
        "custom_fields": {"website_id": "b1", "website_kind": "booking"},
    }
    assert (e.crm_id, b.crm_id) == ("ts_e1", "ts_b1")


@respx.mock
async def test_a_record_deleted_in_treadsoft_is_created_again(treadsoft) -> None:
    respx.put(f"{URL}/api/v1/contacts/ts_gone").mock(
        return_value=httpx.Response(404, json={"error": "not found"})
    )
    respx.get(f"{URL}/api/v1/contacts").mock(return_value=httpx.Response(200, json={"data": []}))
    create = respx.post(f"{URL}/api/v1/contacts").mock(
        return_value=httpx.Response(201, json={"id": "ts_new"})
    )

    [outcome] = await treadsoft.deliver(
        Kind.owner, [delivery(Kind.owner, "u1", OWNER, crm_id="ts_gone")]
    )

    assert create.call_count == 1
    assert (outcome.crm_id, outcome.action) == ("ts_new", Action.create)


@respx.mock
async def test_check_calls_the_health_endpoint_with_both_headers(treadsoft) -> None:
    route = respx.get(f"{URL}/api/v1/health").mock(
        return_value=httpx.Response(200, json={"status": "ok"})
    )

    assert await treadsoft.check() is True
    assert route.calls[0].request.headers["x-api-secret"] == SECRET
