"""Odd but plausible input, each once answered 500 (issue 11): now a 4xx naming the field, and
nothing half-written. Raw bodies are sent as bytes: a lone surrogate only exists as a JSON
escape (`"\\ud800"`), which no encoder of a real string would write."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from app.fakes.hubspot import sign_v3
from app.settings import HubSpotSettings, Settings
from tests.conftest import make_settings
from tests.webhooks.conftest import event_body, sign

STRIPE_SECRET = "whsec_test_0123456789abcdef"
HUBSPOT_SECRET = "hubspot-app-secret-7c1d2e3f"
JSON = {"Content-Type": "application/json", "Prefer": "respond-async"}
SURROGATE = '"\\ud800"'  # the JSON text of a lone surrogate


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(
        db_url,
        crm_providers="mock,internal",
        stripe_webhook_secret=STRIPE_SECRET,
        hubspot=HubSpotSettings(_env_file=None, app_secret=HUBSPOT_SECRET),  # type: ignore[call-arg]
    )


def refused(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["field"] == field, body
    return body


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def never_stored(client: httpx.AsyncClient, user_id: str) -> None:
    response = await client.get("/api/crm/sync/owner", params={"userId": user_id})
    assert response.status_code == 404, response.text


# -- record bodies ----------------------------------------------------------------------------


async def test_a_lone_surrogate_in_custom_fields_is_refused_naming_the_field(client) -> None:
    raw = f'{{"userId":"u1","name":"Ann","customFields":{{"note":{SURROGATE}}}}}'
    response = await client.post("/api/crm/sync/owner", content=raw, headers=JSON)
    refused(response, 422, "customFields.note")
    await never_stored(client, "u1")


async def test_a_lone_surrogate_in_an_unknown_field_is_refused_naming_it(client) -> None:
    raw = f'{{"userId":"u1","nickname":{SURROGATE}}}'
    response = await client.post("/api/crm/sync/owner", content=raw, headers=JSON)
    refused(response, 422, "nickname")
    await never_stored(client, "u1")


async def test_a_batch_with_one_surrogate_item_stores_the_others(client) -> None:
    raw = (
        '[{"userId":"u1","name":"Ann"},'
        f'{{"userId":"u2","customFields":{{"x":{SURROGATE}}}}},'
        f'{{"userId":"u3","nickname":{SURROGATE}}},'
        '{"userId":"u4","name":"Dee"}]'
    )
    response = await client.post("/api/crm/sync/owner/batch", content=raw, headers=JSON)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert [(r["index"], r["id"], r["field"]) for r in answer["rejections"]] == [
        (1, "u2", "customFields.x"),
        (2, "u3", "nickname"),
    ]
    for user_id in ("u1", "u4"):
        assert (await client.get("/api/crm/sync/owner", params={"userId": user_id})).is_success
    await never_stored(client, "u2")


async def test_a_deeply_nested_batch_item_is_refused_alone(client) -> None:
    raw = f'[{{"userId":"u1","name":"Ann"}},{{"userId":"u2","customFields":{nested(100)}}}]'
    response = await client.post("/api/crm/sync/owner/batch", content=raw, headers=JSON)
    assert response.status_code == 202, response.text
    [rejection] = response.json()["rejections"]
    assert (rejection["index"], rejection["id"]) == (1, "u2")
    assert rejection["field"].startswith("customFields.a.a")
    assert "nested" in rejection["error"]
    await never_stored(client, "u2")


@pytest.mark.parametrize("depth", [1000, 5000])
async def test_a_batch_nested_past_reading_is_a_400(client, depth: int) -> None:
    raw = f'[{{"userId":"u1","customFields":{nested(depth)}}}]'
    response = await client.post("/api/crm/sync/owner/batch", content=raw, headers=JSON)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False
    await never_stored(client, "u1")


@pytest.mark.parametrize("depth", [100, 1000, 5000])
async def test_a_deeply_nested_record_is_a_4xx(client, depth: int) -> None:
    raw = f'{{"userId":"u1","customFields":{nested(depth)}}}'
    response = await client.post("/api/crm/sync/owner", content=raw, headers=JSON)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False
    await never_stored(client, "u1")


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("property", {"propertyId": "p1", "bedrooms": 2**63}, "bedrooms"),
        ("property", {"propertyId": "p1", "bathrooms": 2**31}, "bathrooms"),
        ("property", {"propertyId": "p1", "pricePerNight": 1e308}, "pricePerNight"),
        ("property", {"propertyId": "p1", "pricePerNight": False}, "pricePerNight"),
        ("property", {"propertyId": "p1", "maxGuests": True}, "maxGuests"),
        ("booking", {"bookingId": "b1", "totalPrice": 10**12}, "totalPrice"),
        ("membership", {"userId": "u1", "price": True}, "price"),
        ("membership", {"userId": "u1", "paymentFailureCount": 2**40}, "paymentFailureCount"),
        ("owner", {"userId": "u1", "signupDate": "9999-12-31T23:59:59-14:00"}, "signupDate"),
        ("membership", {"userId": "u1", "endDate": "0001-01-01T00:00:00+14:00"}, "endDate"),
        ("booking", {"bookingId": "b1", "paymentStatus": "x" * 33}, "paymentStatus"),
        ("owner", {"userId": "u1", "postcode": "x" * 33}, "postcode"),
        ("enquiry", {"enquiryId": "e1", "source": "x" * 65}, "source"),
        ("membership", {"userId": "u1", "billingCycle": "x" * 33}, "billingCycle"),
    ],
)
async def test_values_the_internal_crm_cannot_store_are_refused_at_accept(
    client, kind: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(f"/api/crm/sync/{kind}", json=body, headers=JSON)
    refused(response, 422, field)
    id_field = next(k for k in body if k.endswith("Id"))
    status = await client.get(f"/api/crm/sync/{kind}", params={id_field: body[id_field]})
    assert status.status_code == 404


async def test_the_websites_usual_values_are_still_accepted(client) -> None:
    body = {
        "propertyId": 123,
        "ownerId": "u1",
        "bedrooms": "4",
        "pricePerNight": "250.50",
        "maxGuests": 2**31 - 1,
    }
    response = await client.post("/api/crm/sync/property", json=body, headers=JSON)
    assert response.status_code == 202, response.text


# -- ops bodies -------------------------------------------------------------------------------


async def test_retry_with_a_surrogate_entity_id_is_refused_naming_it(ops) -> None:
    raw = f'{{"status":"failed","entityId":{SURROGATE}}}'
    response = await ops.post("/api/crm/sync/retry", content=raw, headers=JSON)
    refused(response, 422, "entityId")


async def test_a_note_reminder_past_the_calendar_is_refused_naming_it(ops) -> None:
    body = {"content": "call back", "reminderDate": "9999-12-31T23:59:59-14:00"}
    response = await ops.post("/api/crm/contacts/user_1/notes", json=body)
    refused(response, 422, "reminderDate")


async def test_a_surrogate_in_a_note_is_refused_naming_it(ops) -> None:
    raw = f'{{"content":{SURROGATE}}}'
    response = await ops.post("/api/crm/contacts/user_1/notes", content=raw, headers=JSON)
    refused(response, 422, "content")


# -- query strings and path segments ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/crm/contacts", {"search": "a\x00b"}, "search"),
        ("/api/crm/contacts", {"cursor": "a\x00b"}, "cursor"),
        ("/api/crm/enquiries", {"ownerContactId": "a\x00b"}, "ownerContactId"),
        ("/api/crm/leads", {"email": "a\x00b"}, "email"),
        ("/api/crm/leads", {"q": "a\x00b"}, "q"),
        ("/api/crm/leads", {"crmId": "\x00"}, "crmId"),
        ("/api/webhooks/events", {"type": "a\x00"}, "type"),
        ("/api/webhooks/events", {"ownerId": "a\x00"}, "ownerId"),
        ("/api/crm/sync/owner", {"userId": "u\x00"}, "userId"),
        ("/api/crm/sync/logs", {"entityId": "u\x00"}, "entityId"),
    ],
)
async def test_nul_in_a_query_string_is_refused_naming_the_parameter(
    ops, path: str, params: dict[str, str], field: str
) -> None:
    refused(await ops.get(path, params=params), 422, field)


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/crm/contacts/u%00x", "contact_id"),
        ("POST", "/api/crm/contacts/u%00x/notes", "contact_id"),
        ("PUT", "/api/crm/enquiries/e%00x", "enquiry_id"),
        ("GET", "/api/crm/sync/bulk/bulk%00x", "bulkId"),
        ("GET", "/api/webhooks/events/1%00", "id"),
    ],
)
async def test_nul_in_a_path_segment_is_refused_naming_the_parameter(
    ops, method: str, path: str, field: str
) -> None:
    body = {"content": "x"} if path.endswith("notes") else {"status": "contacted"}
    response = await ops.request(method, path, json=body if method != "GET" else None)
    refused(response, 422, field)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/crm/leads", {"cursor": str(2**63)}, "cursor"),
        ("/api/webhooks/events", {"cursor": str(2**63)}, "cursor"),
        ("/api/crm/sync/logs", {"jobId": str(2**63)}, "jobId"),
        ("/api/webhooks/events/9223372036854775808", {}, "id"),
    ],
)
async def test_integers_past_int64_are_refused_naming_the_parameter(
    ops, path: str, params: dict[str, str], field: str
) -> None:
    refused(await ops.get(path, params=params), 422, field)


# -- webhooks ---------------------------------------------------------------------------------


async def stripe(app: Any, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, STRIPE_SECRET)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await c.post("/api/webhooks/stripe", content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event_body(created=10**20), "created"),
        (event_body(created=-(10**20)), "created"),
        (event_body(id="evt_\x00"), "id"),
        (
            b'{"id":"evt_deep","object":"event","type":"customer.created","created":1763700000,'
            b'"data":{"object":' + nested(5000).encode() + b"}}",
            "body",
        ),
        (
            b'{"id":"evt_1","object":"event","type":"customer.created","created":1763700000,'
            b'"data":{"object":{"name":"\\udc00"}}}',
            "data.object.name",
        ),
    ],
)
async def test_a_signed_stripe_event_that_cannot_be_stored_is_a_400(
    app, ops, body: bytes, field: str
) -> None:
    refused(await stripe(app, body), 400, field)
    assert (await ops.get("/api/webhooks/events")).json()["events"] == []


async def test_a_signed_hubspot_event_with_nul_in_its_type_is_a_400(app, ops) -> None:
    events = [{"eventId": 1, "subscriptionType": "contact.\x00creation", "objectId": 5}]
    body = json.dumps(events).encode()
    timestamp = str(int(time.time() * 1000))
    uri = "http://test/api/webhooks/hubspot"
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": sign_v3(HUBSPOT_SECRET, "POST", uri, body, timestamp),
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        response = await c.post("/api/webhooks/hubspot", content=body, headers=headers)
    refused(response, 400, "[0].subscriptionType")
    assert (await ops.get("/api/webhooks/events")).json()["events"] == []


# -- duplicate field names ----------------------------------------------------------------------
# RFC 8259 section 4: names in an object SHOULD be unique, and parsers disagree on which
# duplicate wins. `{"userId":"a","userId":"b"}` once synced owner b without a word.


async def test_a_record_naming_its_id_twice_is_refused_and_neither_is_stored(client) -> None:
    raw = '{"userId":"dup1","userId":"dup2","name":"Ann"}'
    response = await client.post("/api/crm/sync/owner", content=raw, headers=JSON)
    body = refused(response, 422, "userId")
    assert "more than once" in body["error"]
    await never_stored(client, "dup1")
    await never_stored(client, "dup2")


async def test_a_duplicate_inside_custom_fields_is_named_by_its_path(client) -> None:
    raw = '{"userId":"u1","customFields":{"tier":"gold","tier":"silver"}}'
    response = await client.post("/api/crm/sync/owner", content=raw, headers=JSON)
    refused(response, 422, "customFields.tier")
    await never_stored(client, "u1")


async def test_a_batch_item_with_a_duplicate_is_refused_alone(client) -> None:
    raw = '[{"userId":"u1","name":"Ann"},{"userId":"u2","email":"a@example.com","email":"b@x.com"}]'
    response = await client.post("/api/crm/sync/owner/batch", content=raw, headers=JSON)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    [rejection] = answer["rejections"]
    assert (rejection["index"], rejection["id"], rejection["field"]) == (1, "u2", "email")
    await never_stored(client, "u2")


async def test_an_ops_body_with_a_duplicate_is_refused(ops) -> None:
    raw = '{"status":"failed","status":"dead"}'
    response = await ops.post("/api/crm/sync/retry", content=raw, headers=JSON)
    refused(response, 422, "status")


# -- a stay that ends before it starts ----------------------------------------------------------


async def test_a_booking_checking_out_before_it_checks_in_is_refused_naming_check_out(
    client,
) -> None:
    booking = {"bookingId": "bk_back", "checkIn": "2026-05-05", "checkOut": "2026-05-01"}
    response = await client.post("/api/crm/sync/booking", json=booking, headers=JSON)
    body = refused(response, 422, "checkOut")
    assert "2026-05-05" in body["error"]
    stored = await client.get("/api/crm/sync/booking", params={"bookingId": "bk_back"})
    assert stored.status_code == 404


async def test_a_batch_booking_checking_out_first_is_refused_alone(client) -> None:
    batch = [
        {"bookingId": "bk_ok", "checkIn": "2026-05-01", "checkOut": "2026-05-01"},
        {"bookingId": "bk_back", "checkIn": "2026-05-05", "checkOut": "2026-05-01"},
    ]
    response = await client.post("/api/crm/sync/booking/batch", json=batch, headers=JSON)
    assert response.status_code == 202, response.text
    [rejection] = response.json()["rejections"]
    assert (rejection["index"], rejection["id"], rejection["field"]) == (1, "bk_back", "checkOut")
