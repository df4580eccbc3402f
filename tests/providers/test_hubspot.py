"""The HubSpot adapter's requests, pinned with respx and checked against our models of HubSpot's
request bodies."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from app.providers.base import Action, FailureKind
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import LocalRateLimiter
from app.records import Kind
from tests.providers.conftest import HUBSPOT, TOKEN, body, delivery, hubspot_answer

NOW = "2026-11-21T10:00:00Z"


def upserted(oid: str, trace: str, props: dict[str, str], new: bool = True) -> dict:
    return {
        "id": oid,
        "objectWriteTraceId": trace,
        "properties": props,
        "createdAt": NOW,
        "updatedAt": NOW,
        "new": new,
    }


def batch(results: list, errors: list | None = None) -> dict:
    out = {"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}
    if errors:
        out |= {"numErrors": len(errors), "errors": errors}
    return out


@respx.mock
async def test_owners_are_one_batch_upsert_by_email_with_the_website_id(hubspot) -> None:
    route = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(
            200,
            batch(
                [
                    upserted("501", "1", {"email": "ann@example.com"}),
                    upserted("502", "2", {"email": "bob@example.com"}, new=False),
                ]
            ),
        )
    )
    owners = [
        delivery(
            Kind.owner,
            "u1",
            {
                "userId": "u1",
                "name": "Ann Owner",
                "email": "ann@example.com",
                "phone": "+447700900123",
                "membershipStatus": "active",
                "signupDate": "2026-01-05",
            },
            job_id=1,
        ),
        delivery(Kind.owner, "u2", {"userId": "u2", "email": "bob@example.com"}, job_id=2),
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    assert route.call_count == 1
    request = route.calls[0].request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert body(request) == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "ann@example.com",
                "objectWriteTraceId": "1",
                "properties": {
                    "email": "ann@example.com",
                    "firstname": "Ann",
                    "lastname": "Owner",
                    "phone": "+447700900123",
                    "website_user_id": "u1",
                    "membership_status": "active",
                    "website_signup_date": "1767571200000",
                },
            },
            {
                "idProperty": "email",
                "id": "bob@example.com",
                "objectWriteTraceId": "2",
                "properties": {"email": "bob@example.com", "website_user_id": "u2"},
            },
        ]
    }
    assert [(o.crm_id, o.action, o.ok) for o in outcomes] == [
        ("501", Action.create, True),
        ("502", Action.update, True),
    ]


@respx.mock
async def test_an_owner_with_a_known_contact_is_updated_by_id(hubspot) -> None:
    route = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/update").mock(
        side_effect=hubspot_answer(
            200, batch([upserted("777", "3", {"email": "new@example.com"}) | {"new": False}])
        )
    )
    owner = delivery(
        Kind.owner, "u3", {"userId": "u3", "email": "new@example.com"}, job_id=3, crm_id="777"
    )

    [outcome] = await hubspot.deliver(Kind.owner, [owner])

    assert body(route.calls[0].request)["inputs"] == [
        {
            "id": "777",
            "objectWriteTraceId": "3",
            "properties": {"email": "new@example.com", "website_user_id": "u3"},
        }
    ]
    assert (outcome.crm_id, outcome.ok) == ("777", True)


@respx.mock
async def test_a_207_fails_only_the_record_hubspot_refused_with_its_message(hubspot) -> None:
    message = (
        'Property values were not valid: [{"isValid":false,"message":"Email address '
        'jöhn@example.com is invalid","error":"INVALID_EMAIL","name":"email"}]'
    )
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(
            207,
            batch(
                [upserted("601", "10", {"email": "ok@example.com"})],
                [
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": message,
                        "context": {"objectWriteTraceId": ["11"]},
                        "errors": [],
                        "links": {},
                    }
                ],
            ),
        )
    )
    owners = [
        delivery(Kind.owner, "ok", {"email": "ok@example.com"}, job_id=10),
        delivery(Kind.owner, "bad", {"email": "jöhn@example.com"}, job_id=11),
    ]

    good, bad = await hubspot.deliver(Kind.owner, owners)

    assert good.ok and good.crm_id == "601"
    assert bad.error is not None and bad.error.kind is FailureKind.rejected
    assert "Email address jöhn@example.com is invalid" in bad.error.message
    assert bad.response["category"] == "VALIDATION_ERROR"


@respx.mock
async def test_a_refused_batch_that_names_an_email_fails_it_and_resends_the_rest(hubspot) -> None:
    calls: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        ids = [i["id"] for i in body(request)["inputs"]]
        calls.append(ids)
        if "x@bad" in ids:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "message": 'Property values were not valid: [{"message":"Email address '
                    'x@bad is invalid","error":"INVALID_EMAIL","name":"email"}]',
                    "correlationId": "c0ffee",
                    "category": "VALIDATION_ERROR",
                },
            )
        return httpx.Response(
            200,
            json=batch(
                [
                    upserted(str(900 + n), i["objectWriteTraceId"], {"email": i["id"]})
                    for n, i in enumerate(body(request)["inputs"])
                ]
            ),
        )

    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(side_effect=answer)
    owners = [
        delivery(Kind.owner, f"u{n}", {"email": e}, job_id=20 + n)
        for n, e in enumerate(["a@example.com", "x@bad", "b@example.com"])
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    assert calls == [
        ["a@example.com", "x@bad", "b@example.com"],
        ["a@example.com", "b@example.com"],
    ]
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error.kind is FailureKind.rejected
    assert "x@bad is invalid" in outcomes[1].error.message


@respx.mock
async def test_a_property_is_a_listing_upserted_by_website_id_and_associated_to_its_owner(
    hubspot,
) -> None:
    upsert = respx.post(f"{HUBSPOT}/crm/v3/objects/0-420/batch/upsert").mock(
        side_effect=hubspot_answer(
            200, batch([upserted("3001", "5", {"website_property_id": "123"})])
        )
    )
    associate = respx.post(
        f"{HUBSPOT}/crm/v4/associations/0-420/contacts/batch/associate/default"
    ).mock(side_effect=hubspot_answer(200, batch([])))
    listing = delivery(
        Kind.property,
        "123",
        {
            "propertyId": "123",
            "ownerId": "u1",
            "title": "Sea View Barn",
            "location": "Cornwall",
            "bedrooms": 4,
            "pricePerNight": 250.0,
            "status": "approved",
        },
        job_id=5,
        parent_crm_id="501",
    )

    [outcome] = await hubspot.deliver(Kind.property, [listing])

    assert body(upsert.calls[0].request) == {
        "inputs": [
            {
                "idProperty": "website_property_id",
                "id": "123",
                "objectWriteTraceId": "5",
                "properties": {
                    "website_property_id": "123",
                    "hs_name": "Sea View Barn",
                    "hs_address_1": "Cornwall",
                    "hs_bedrooms": "4",
                    "hs_price": "250",
                    "listing_status": "approved",
                },
            }
        ]
    }
    assert body(associate.calls[0].request) == {
        "inputs": [{"from": {"id": "3001"}, "to": {"id": "501"}}]
    }
    assert (outcome.crm_id, outcome.action, outcome.ok) == ("3001", Action.create, True)


@respx.mock
async def test_a_booking_is_a_deal_with_its_guest_contact_and_listing(hubspot) -> None:
    guests = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("701", "7", {"email": "g@example.com"})]))
    )
    deals = respx.post(f"{HUBSPOT}/crm/v3/objects/deals/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("801", "7", {})]))
    )
    to_contact = respx.post(
        f"{HUBSPOT}/crm/v4/associations/deals/contacts/batch/associate/default"
    ).mock(side_effect=hubspot_answer(200, batch([])))
    to_listing = respx.post(
        f"{HUBSPOT}/crm/v4/associations/deals/0-420/batch/associate/default"
    ).mock(side_effect=hubspot_answer(200, batch([])))
    booking = delivery(
        Kind.booking,
        "bk_1",
        {
            "bookingId": "bk_1",
            "propertyId": "123",
            "guestName": "Gus Guest",
            "guestEmail": "g@example.com",
            "checkIn": "2026-05-01",
            "checkOut": "2026-05-05",
            "guests": 6,
            "totalPrice": 1000.0,
            "currency": "gbp",
            "status": "confirmed",
            "paymentStatus": "deposit_paid",
        },
        job_id=7,
        parent_crm_id="3001",
    )

    [outcome] = await hubspot.deliver(Kind.booking, [booking])

    assert body(guests.calls[0].request)["inputs"][0]["properties"] == {
        "email": "g@example.com",
        "firstname": "Gus",
        "lastname": "Guest",
    }
    assert body(deals.calls[0].request)["inputs"] == [
        {
            "idProperty": "website_booking_id",
            "id": "bk_1",
            "objectWriteTraceId": "7",
            "properties": {
                "website_booking_id": "bk_1",
                "dealname": "Booking bk_1: Gus Guest",
                "pipeline": "default",
                "dealstage": "closedwon",
                "amount": "1000",
                "deal_currency_code": "GBP",
                "check_in_date": "1777593600000",
                "check_out_date": "1777939200000",
                "number_of_guests": "6",
                "booking_status": "confirmed",
                "payment_status": "deposit_paid",
            },
        }
    ]
    assert body(to_contact.calls[0].request)["inputs"] == [
        {"from": {"id": "801"}, "to": {"id": "701"}}
    ]
    assert body(to_listing.calls[0].request)["inputs"] == [
        {"from": {"id": "801"}, "to": {"id": "3001"}}
    ]
    assert (outcome.crm_id, outcome.ok) == ("801", True)


@respx.mock
async def test_an_enquiry_as_a_lead_is_looked_up_then_created_with_its_contact(
    hubspot_settings,
) -> None:
    settings = hubspot_settings.model_copy(update={"enquiry_object": "lead"})
    provider = HubSpotProvider(settings, LocalRateLimiter("t", 100))
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("701", "8", {"email": "g@example.com"})]))
    )
    read = respx.post(f"{HUBSPOT}/crm/v3/objects/leads/batch/read").mock(
        side_effect=hubspot_answer(200, batch([]))
    )
    create = respx.post(f"{HUBSPOT}/crm/v3/objects/leads/batch/create").mock(
        side_effect=hubspot_answer(
            201,
            batch(
                [
                    {
                        "id": "901",
                        "objectWriteTraceId": "8",
                        "properties": {"website_enquiry_id": "e1"},
                        "createdAt": NOW,
                        "updatedAt": NOW,
                    }
                ]
            ),
        )
    )
    respx.post(f"{HUBSPOT}/crm/v4/associations/leads/0-420/batch/associate/default").mock(
        side_effect=hubspot_answer(200, batch([]))
    )
    enquiry = delivery(
        Kind.enquiry,
        "e1",
        {"enquiryId": "e1", "guestEmail": "g@example.com", "subject": "May", "status": "new"},
        job_id=8,
        parent_crm_id="3001",
    )

    [outcome] = await provider.deliver(Kind.enquiry, [enquiry])
    await provider.aclose()

    assert body(read.calls[0].request) == {
        "idProperty": "website_enquiry_id",
        "inputs": [{"id": "e1"}],
        "properties": ["website_enquiry_id"],
        "propertiesWithHistory": [],
    }
    assert body(create.calls[0].request)["inputs"] == [
        {
            "objectWriteTraceId": "8",
            "properties": {
                "website_enquiry_id": "e1",
                "hs_lead_name": "Enquiry e1: May",
                "hs_pipeline_stage": "new-stage-id",
                "enquiry_status": "new",
            },
            "associations": [
                {
                    "to": {"id": "701"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 578}],
                }
            ],
        }
    ]
    assert (outcome.crm_id, outcome.action, outcome.ok) == ("901", Action.create, True)


@respx.mock
async def test_a_membership_updates_its_owners_contact(hubspot) -> None:
    route = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/update").mock(
        side_effect=hubspot_answer(200, batch([upserted("501", "9", {}) | {"new": False}]))
    )
    membership = delivery(
        Kind.membership,
        "u1",
        {"userId": "u1", "planTier": "gold", "status": "active", "autoRenew": True, "price": 99.0},
        job_id=9,
        parent_crm_id="501",
    )

    [outcome] = await hubspot.deliver(Kind.membership, [membership])

    assert body(route.calls[0].request)["inputs"] == [
        {
            "id": "501",
            "objectWriteTraceId": "9",
            "properties": {
                "membership_tier": "gold",
                "membership_price": "99",
                "membership_status": "active",
                "membership_auto_renew": "true",
            },
        }
    ]
    assert (outcome.crm_id, outcome.action, outcome.ok) == ("501", Action.update, True)


@respx.mock
async def test_notes_and_activities_are_notes_created_on_the_owners_contact(hubspot) -> None:
    search = respx.post(f"{HUBSPOT}/crm/v3/objects/notes/search").mock(
        side_effect=hubspot_answer(200, {"total": 0, "results": []})
    )
    route = respx.post(f"{HUBSPOT}/crm/v3/objects/notes/batch/create").mock(
        side_effect=hubspot_answer(
            201,
            batch(
                [
                    {
                        "id": "n1",
                        "objectWriteTraceId": "12",
                        "properties": {},
                        "createdAt": NOW,
                        "updatedAt": NOW,
                    },
                ]
            ),
        )
    )
    note = delivery(
        Kind.note,
        "note_1",
        {
            "noteId": "note_1",
            "ownerId": "u1",
            "priority": "high",
            "noteType": "issue",
            "content": "Payment failed",
            "reminderDate": "2026-11-21",
        },
        job_id=12,
        parent_crm_id="501",
    )

    [outcome] = await hubspot.deliver(Kind.note, [note])

    # Looked up by our note id first (a lost create answer must not make a second note).
    assert body(search.calls[0].request)["filterGroups"] == [
        {
            "filters": [
                {"propertyName": "crm_sync_note_id", "operator": "IN", "values": ["note:note_1"]}
            ]
        }
    ]
    assert body(route.calls[0].request)["inputs"] == [
        {
            "objectWriteTraceId": "12",
            "properties": {
                "hs_note_body": "[high priority, issue] Payment failed",
                "hs_timestamp": "1795219200000",
                "crm_sync_note_id": "note:note_1",
            },
            "associations": [
                {
                    "to": {"id": "501"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}],
                }
            ],
        }
    ]
    assert (outcome.crm_id, outcome.action, outcome.ok) == ("n1", Action.note, True)


@respx.mock
async def test_a_ten_secondly_429_waits_for_retry_after_and_holds_the_limiter(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(
            429,
            json={
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "c",
                "policyName": "TEN_SECONDLY_ROLLING",
                "requestId": "r",
            },
            headers={"Retry-After": "3"},
        )
    )

    [outcome] = await hubspot.deliver(
        Kind.owner, [delivery(Kind.owner, "u1", {"email": "a@example.com"})]
    )
    error = outcome.error
    assert error is not None
    assert outcome.request["input"]["id"] == "a@example.com"  # its own input, for the sync log

    assert error.kind is FailureKind.rate_limited
    assert error.retry_after == 3.0
    assert hubspot.client.limiter._hold_until > 0  # everyone else waits too


@respx.mock
async def test_a_daily_429_waits_until_the_daily_reset(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(
            429,
            json={
                "status": "error",
                "message": "You have reached your daily limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "c",
                "policyName": "DAILY",
                "requestId": "r",
            },
        )
    )

    [outcome] = await hubspot.deliver(
        Kind.owner, [delivery(Kind.owner, "u1", {"email": "a@example.com"})]
    )
    error = outcome.error
    assert error is not None
    assert outcome.request["input"]["id"] == "a@example.com"  # its own input, for the sync log

    assert error.kind is FailureKind.rate_limited
    assert 0 < error.retry_after <= 24 * 3600
    assert "DAILY" in error.message


@respx.mock
async def test_a_401_holds_the_provider_and_marks_it_unhealthy_without_the_token(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(
            401,
            json={
                "status": "error",
                "message": f"Authentication credentials not found ({TOKEN})",
                "correlationId": "c",
                "category": "INVALID_AUTHENTICATION",
            },
        )
    )

    [outcome] = await hubspot.deliver(
        Kind.owner, [delivery(Kind.owner, "u1", {"email": "a@example.com"})]
    )
    error = outcome.error
    assert error is not None
    assert outcome.request["input"]["id"] == "a@example.com"  # its own input, for the sync log

    assert error.kind is FailureKind.unauthorized
    assert hubspot.client.healthy is False
    assert TOKEN not in error.message and TOKEN not in (hubspot.client.health_error or "")


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(502, json={"message": "bad gateway"}), FailureKind.transient),
        (httpx.ReadTimeout("timed out"), FailureKind.timeout),
        (httpx.RemoteProtocolError("peer closed connection"), FailureKind.transient),
        (httpx.ConnectError("refused"), FailureKind.transient),
    ],
)
@respx.mock
async def test_5xx_timeouts_and_dropped_connections_are_retryable(hubspot, answer, kind) -> None:
    route = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert")
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)

    [outcome] = await hubspot.deliver(
        Kind.owner, [delivery(Kind.owner, "u1", {"email": "a@example.com"})]
    )
    error = outcome.error
    assert error is not None
    assert outcome.request["input"]["id"] == "a@example.com"  # its own input, for the sync log

    assert error.kind is kind
    assert not error.kind.permanent


@respx.mock
async def test_duplicate_emails_in_one_batch_go_in_separate_calls(hubspot) -> None:
    seen: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        inputs = body(request)["inputs"]
        seen.append([i["id"] for i in inputs])
        return httpx.Response(
            200, json=batch([upserted("1", i["objectWriteTraceId"], {}) for i in inputs])
        )

    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(side_effect=answer)
    owners = [
        delivery(Kind.owner, "u1", {"email": "same@example.com"}, job_id=31),
        delivery(Kind.owner, "u2", {"email": "same@example.com"}, job_id=32),
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    assert seen == [["same@example.com"], ["same@example.com"]]
    assert all(o.ok for o in outcomes)


@respx.mock
async def test_the_limiter_adjusts_down_to_hubspots_headers(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        return_value=httpx.Response(
            200,
            json=batch([upserted("1", "1", {})]),
            headers={
                "X-HubSpot-RateLimit-Max": "40",
                "X-HubSpot-RateLimit-Remaining": "5",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            },
        )
    )

    await hubspot.deliver(Kind.owner, [delivery(Kind.owner, "u1", {"email": "a@x.com"}, job_id=1)])

    assert hubspot.client.limiter.limit == 40
    assert len(hubspot.client.limiter._hits) == 35  # HubSpot counts 35 used: so do we


@respx.mock
async def test_an_enquiry_as_a_deal_is_upserted_by_its_website_id(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("702", "40", {"email": "e@example.com"})]))
    )
    deals = respx.post(f"{HUBSPOT}/crm/v3/objects/deals/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("802", "40", {})]))
    )
    respx.post(f"{HUBSPOT}/crm/v4/associations/deals/contacts/batch/associate/default").mock(
        side_effect=hubspot_answer(200, batch([]))
    )
    to_listing = respx.post(
        f"{HUBSPOT}/crm/v4/associations/deals/0-420/batch/associate/default"
    ).mock(side_effect=hubspot_answer(200, batch([])))
    enquiry = delivery(
        Kind.enquiry,
        "e9",
        {
            "enquiryId": "e9",
            "guestEmail": "e@example.com",
            "subject": "Half term",
            "message": "Is it free?",
            "status": "contacted",
            "source": "website",
            "guests": 8,
        },
        job_id=40,
        parent_crm_id="3001",
    )

    [outcome] = await hubspot.deliver(Kind.enquiry, [enquiry])

    assert body(deals.calls[0].request)["inputs"] == [
        {
            "idProperty": "website_enquiry_id",
            "id": "e9",
            "objectWriteTraceId": "40",
            "properties": {
                "website_enquiry_id": "e9",
                "dealname": "Enquiry e9: Half term",
                "pipeline": "default",
                "dealstage": "qualifiedtobuy",
                "description": "Is it free?",
                "enquiry_status": "contacted",
                "enquiry_source": "website",
                "number_of_guests": "8",
            },
        }
    ]
    assert body(to_listing.calls[0].request)["inputs"] == [
        {"from": {"id": "802"}, "to": {"id": "3001"}}
    ]
    assert (outcome.crm_id, outcome.ok) == ("802", True)


@respx.mock
async def test_a_lead_found_by_its_website_id_is_updated_not_created(hubspot_settings) -> None:
    settings = hubspot_settings.model_copy(update={"enquiry_object": "lead"})
    provider = HubSpotProvider(settings, LocalRateLimiter("t", 100))
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("701", "41", {"email": "g@example.com"})]))
    )
    respx.post(f"{HUBSPOT}/crm/v3/objects/leads/batch/read").mock(
        side_effect=hubspot_answer(
            200,
            batch(
                [
                    {
                        "id": "905",
                        "properties": {"website_enquiry_id": "e2"},
                        "createdAt": NOW,
                        "updatedAt": NOW,
                    }
                ]
            ),
        )
    )
    create = respx.post(f"{HUBSPOT}/crm/v3/objects/leads/batch/create")
    update = respx.post(f"{HUBSPOT}/crm/v3/objects/leads/batch/update").mock(
        side_effect=hubspot_answer(200, batch([upserted("905", "41", {}) | {"new": False}]))
    )
    enquiry = delivery(
        Kind.enquiry, "e2", {"enquiryId": "e2", "guestEmail": "g@example.com"}, job_id=41
    )

    [outcome] = await provider.deliver(Kind.enquiry, [enquiry])
    await provider.aclose()

    assert create.call_count == 0
    assert body(update.calls[0].request)["inputs"] == [
        {
            "id": "905",
            "objectWriteTraceId": "41",
            "properties": {
                "website_enquiry_id": "e2",
                "hs_lead_name": "Enquiry e2: g@example.com",
                "hs_pipeline_stage": "new-stage-id",
            },
        }
    ]
    assert (outcome.crm_id, outcome.action) == ("905", Action.update)


@respx.mock
async def test_a_known_note_is_updated_and_an_activity_is_written_as_a_note(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/notes/search").mock(
        side_effect=hubspot_answer(200, {"total": 0, "results": []})
    )
    update = respx.post(f"{HUBSPOT}/crm/v3/objects/notes/batch/update").mock(
        side_effect=hubspot_answer(200, batch([upserted("n7", "50", {}) | {"new": False}]))
    )
    create = respx.post(f"{HUBSPOT}/crm/v3/objects/notes/batch/create").mock(
        side_effect=hubspot_answer(
            201,
            batch(
                [
                    {
                        "id": "n8",
                        "objectWriteTraceId": "51",
                        "properties": {},
                        "createdAt": NOW,
                        "updatedAt": NOW,
                    }
                ]
            ),
        )
    )
    note = delivery(
        Kind.note,
        "note_7",
        {"noteId": "note_7", "ownerId": "u1", "content": "Call back", "reminderDate": "2026-11-21"},
        job_id=50,
        crm_id="n7",
        parent_crm_id="501",
    )
    activity = delivery(
        Kind.activity,
        "act_1",
        {
            "activityId": "act_1",
            "ownerId": "u1",
            "activityType": "payment_success",
            "title": "Payment received",
            "details": "£99.00 for bk_1",
            "metadata": {"amount": 9900, "currency": "gbp"},
            "occurredAt": "2026-11-21T10:00:00Z",
        },
        job_id=51,
        parent_crm_id="501",
    )

    [updated] = await hubspot.deliver(Kind.note, [note])
    [created] = await hubspot.deliver(Kind.activity, [activity])

    assert body(update.calls[0].request)["inputs"] == [
        {
            "id": "n7",
            "objectWriteTraceId": "50",
            "properties": {
                "hs_note_body": "[medium priority, general] Call back",
                "hs_timestamp": "1795219200000",
                "crm_sync_note_id": "note:note_7",
            },
        }
    ]
    assert body(create.calls[0].request)["inputs"][0]["properties"] == {
        "hs_note_body": "<strong>Payment received</strong><br>£99.00 for bk_1<br>amount: 9900"
        "<br>currency: gbp",
        "hs_timestamp": "1795255200000",
        "crm_sync_note_id": "activity:act_1",
    }
    assert (updated.crm_id, created.crm_id) == ("n7", "n8")
    assert updated.action == created.action == Action.note


@respx.mock
async def test_check_reads_one_contact(hubspot) -> None:
    route = respx.get(f"{HUBSPOT}/crm/v3/objects/contacts", params={"limit": "1"}).mock(
        return_value=httpx.Response(200, json={"results": []})
    )

    assert await hubspot.check() is True
    assert route.calls[0].request.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_daily_limit_resets_at_midnight_in_the_accounts_time_zone() -> None:
    from datetime import UTC, datetime

    from app.providers.hubspot.client import seconds_to_midnight

    at = datetime(2026, 7, 1, 22, 0, tzinfo=UTC)  # 23:00 in London (BST), 18:00 in New York

    assert seconds_to_midnight("UTC", at) == 2 * 3600
    assert seconds_to_midnight("Europe/London", at) == 1 * 3600
    assert seconds_to_midnight("America/New_York", at) == 6 * 3600


@respx.mock
async def test_an_owner_whose_contact_was_deleted_in_hubspot_is_upserted_by_email(hubspot) -> None:
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/update").mock(
        side_effect=hubspot_answer(
            207,
            batch(
                [],
                [
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Could not get some objects, they may be deleted or not exist.",
                        "context": {"ids": ["404"]},
                        "errors": [],
                        "links": {},
                    }
                ],
            ),
        )
    )
    read = respx.get(f"{HUBSPOT}/crm/v3/objects/contacts/404").mock(
        return_value=httpx.Response(
            404,
            json={
                "status": "error",
                "message": "resource not found",
                "category": "OBJECT_NOT_FOUND",
            },
        )
    )
    by_user_id = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/read").mock(
        side_effect=hubspot_answer(200, batch([]))
    )
    upsert = respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=hubspot_answer(200, batch([upserted("990", "60", {"email": "z@example.com"})]))
    )
    owner = delivery(Kind.owner, "u9", {"email": "z@example.com"}, job_id=60, crm_id="404")

    [outcome] = await hubspot.deliver(Kind.owner, [owner])

    assert read.called  # not merged into another contact
    assert body(by_user_id.calls[0].request) == {
        "idProperty": "website_user_id",
        "inputs": [{"id": "u9"}],
        "properties": ["website_user_id"],
        "propertiesWithHistory": [],
    }

    assert body(upsert.calls[0].request)["inputs"][0]["id"] == "z@example.com"
    assert (outcome.crm_id, outcome.ok, outcome.action) == ("990", True, Action.create)


def refusing(culprit: str | None, message: str, calls: list[list[str]]):  # type: ignore[no-untyped-def]
    """A batch endpoint that refuses (400, naming nobody) any batch holding `culprit`, or every
    batch when `culprit` is None."""

    def answer(request: httpx.Request) -> httpx.Response:
        inputs = body(request)["inputs"]
        calls.append([i["id"] for i in inputs])
        if culprit is None or culprit in calls[-1]:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "message": message,
                    "correlationId": "c",
                    "category": "VALIDATION_ERROR",
                },
            )
        return httpx.Response(
            200, json=batch([upserted(i["id"], i["objectWriteTraceId"], {}) for i in inputs])
        )

    return answer


@respx.mock
async def test_a_refused_batch_naming_nobody_is_split_until_the_culprit_is_alone(hubspot) -> None:
    calls: list[list[str]] = []
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=refusing("x@example.com", "Invalid input", calls)
    )
    emails = ["a@example.com", "x@example.com", "b@example.com", "c@example.com"]
    owners = [
        delivery(Kind.owner, f"u{n}", {"email": e}, job_id=70 + n) for n, e in enumerate(emails)
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    assert calls == [
        emails,
        ["a@example.com", "x@example.com"],
        ["b@example.com", "c@example.com"],
        ["a@example.com"],
        ["x@example.com"],
    ]
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert "Invalid input" in outcomes[1].error.message


@respx.mock
async def test_a_refusal_of_a_property_every_input_sends_fails_them_all_at_once(hubspot) -> None:
    calls: list[list[str]] = []
    detail = {
        "isValid": False,
        "message": 'Property "website_user_id" does not exist',
        "error": "PROPERTY_DOESNT_EXIST",
        "name": "website_user_id",
    }
    message = "Property values were not valid: " + json.dumps([detail])
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=refusing(None, message, calls)
    )
    owners = [
        delivery(Kind.owner, f"u{n}", {"email": f"o{n}@example.com"}, job_id=80 + n)
        for n in range(8)
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    assert len(calls) == 1  # the property it names is in every input: no split needed
    assert all(o.error is not None and o.error.kind is FailureKind.rejected for o in outcomes)
    assert all("does not exist" in o.error.message for o in outcomes)


@respx.mock
async def test_a_refusal_naming_nothing_is_split_down_to_single_inputs(hubspot) -> None:
    calls: list[list[str]] = []
    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(
        side_effect=refusing(None, "Invalid input", calls)
    )
    owners = [
        delivery(Kind.owner, f"u{n}", {"email": f"o{n}@example.com"}, job_id=80 + n)
        for n in range(4)
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    # Halves refused alike prove nothing about each input: each is tried on its own.
    assert sorted(len(c) for c in calls) == [1, 1, 1, 1, 2, 2, 4]
    assert all(o.error is not None and "Invalid input" in o.error.message for o in outcomes)


@respx.mock
async def test_two_bad_inputs_in_four_refused_naming_nobody_fail_alone(hubspot) -> None:
    calls: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        inputs = body(request)["inputs"]
        calls.append([i["id"] for i in inputs])
        if {"x@example.com", "y@example.com"} & set(calls[-1]):
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "message": "Invalid input",
                    "category": "VALIDATION_ERROR",
                },
            )
        return httpx.Response(
            200, json=batch([upserted(i["id"], i["objectWriteTraceId"], {}) for i in inputs])
        )

    respx.post(f"{HUBSPOT}/crm/v3/objects/contacts/batch/upsert").mock(side_effect=answer)
    emails = ["a@example.com", "x@example.com", "b@example.com", "y@example.com"]
    owners = [
        delivery(Kind.owner, f"u{n}", {"email": e}, job_id=90 + n) for n, e in enumerate(emails)
    ]

    outcomes = await hubspot.deliver(Kind.owner, owners)

    # Both halves are refused alike: each is split again, so the good ones still go through.
    assert [o.ok for o in outcomes] == [True, False, True, False]
    assert all("Invalid input" in o.error.message for o in (outcomes[1], outcomes[3]))
