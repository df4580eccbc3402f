"""The website's sync endpoints, as the website and ops see them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import SyncLog
from app.providers.mock import Faults

OWNER = {"userId": "user_123abc", "name": "John Smith", "email": "john@example.com"}

ONE_OF_EACH: list[tuple[str, str, dict[str, Any]]] = [
    (
        "owner",
        "userId",
        {"userId": "u1", "name": "Ann Owner", "email": "Ann@Example.com", "phone": "07700 900123"},
    ),
    (
        "property",
        "propertyId",
        {
            "propertyId": 123,
            "ownerId": "u1",
            "title": "Sea View Barn",
            "bedrooms": 4,
            "status": "approved",
            "pricePerNight": 250,
        },
    ),
    (
        "enquiry",
        "enquiryId",
        {
            "enquiryId": "e1",
            "propertyId": "123",
            "guestName": "Gus",
            "guestEmail": "gus@example.com",
            "message": "Free in May?",
        },
    ),
    (
        "booking",
        "bookingId",
        {
            "bookingId": "b1",
            "propertyId": "123",
            "guestEmail": "g@x.com",
            "checkIn": "2026-05-01",
            "checkOut": "2026-05-05",
            "totalPrice": 1000,
            "currency": "GBP",
        },
    ),
    (
        "membership",
        "userId",
        {
            "userId": "u1",
            "planTier": "silver",
            "status": "active",
            "billingCycle": "annual",
            "price": 99,
        },
    ),
]


async def test_the_seed_call_syncs_once_then_reports_already_synced(client, mock) -> None:
    first = await client.post("/api/crm/sync/owner", json=OWNER)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True
    assert body["message"] == "Owner synced to CRM successfully"
    assert body["crmId"].startswith("crm_contact_")
    assert body["providers"]["mock"]["status"] == "synced"
    calls = mock.calls

    again = await client.post("/api/crm/sync/owner", json=OWNER)
    assert again.status_code == 200
    assert again.json()["message"] == "Owner already synced to CRM"
    assert again.json()["crmId"] == body["crmId"]
    assert mock.calls == calls  # the provider was not called

    status = await client.get("/api/crm/sync/owner", params={"userId": "user_123abc"})
    assert status.status_code == 200
    assert status.json()["syncStatus"] == "synced"
    assert status.json()["lastSyncedAt"].endswith("Z")
    assert status.json()["crmId"] == body["crmId"]


async def test_every_kind_syncs_with_its_parent(client) -> None:
    for kind, id_field, record in ONE_OF_EACH:
        response = await client.post(f"/api/crm/sync/{kind}", json=record)
        assert response.status_code == 200, (kind, response.text)
        assert response.json()["message"] == f"{kind.capitalize()} synced to CRM successfully"
        status = await client.get(f"/api/crm/sync/{kind}", params={id_field: record[id_field]})
        assert status.json()["syncStatus"] == "synced"
        assert status.json()[id_field] == str(record[id_field])


async def test_an_update_reaches_the_crm_and_only_the_change_is_sent(client, mock) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    changed = await client.post(
        "/api/crm/sync/owner", json={"userId": "user_123abc", "phone": "+44 7700 900123"}
    )
    assert changed.json()["message"] == "Owner synced to CRM successfully"
    stored = mock.store[("owner", "user_123abc")]
    assert stored == {**OWNER, "phone": "+447700900123"}  # merged into the stored snapshot


async def test_emails_and_phones_are_normalised_before_hashing(client, mock) -> None:
    await client.post("/api/crm/sync/owner", json={**OWNER, "phone": "07700 900123"})
    same = await client.post(
        "/api/crm/sync/owner",
        json={**OWNER, "email": "JOHN@Example.COM", "phone": "+44 (0)7700 900123"},
    )
    assert same.json()["message"] == "Owner already synced to CRM"
    assert mock.store[("owner", "user_123abc")]["email"] == "john@example.com"


async def test_a_body_with_only_the_id_resyncs_the_stored_snapshot(client, mock) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    resync = await client.post("/api/crm/sync/owner", json={"userId": "user_123abc"})
    assert resync.status_code == 200
    assert resync.json()["message"] == "Owner already synced to CRM"

    unknown = await client.post("/api/crm/sync/owner", json={"userId": "nobody"})
    assert unknown.status_code == 404
    assert unknown.json()["success"] is False
    missing = await client.get("/api/crm/sync/owner", params={"userId": "nobody"})
    assert missing.status_code == 404


async def test_only_the_id_retries_a_rejected_snapshot(client, mock) -> None:
    mock.faults = Faults(mode="reject", count=1)
    rejected = await client.post("/api/crm/sync/owner", json=OWNER)
    assert rejected.status_code == 502
    # The same content again is not sent again: the CRM would reject it the same way.
    calls = mock.calls
    repeat = await client.post("/api/crm/sync/owner", json=OWNER)
    assert repeat.status_code == 502
    assert mock.calls == calls
    retried = await client.post("/api/crm/sync/owner", json={"userId": "user_123abc"})
    assert retried.status_code == 200
    assert retried.json()["syncStatus"] == "synced"


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("owner", {"name": "No Id"}, "userId"),
        ("owner", {"userId": ""}, "userId"),
        ("owner", {"userId": "u1", "email": "not-an-email"}, "email"),
        ("owner", {"userId": "u1", "phone": "12"}, "phone"),
        ("owner", {"userId": "u1", "phone": "call me maybe"}, "phone"),
        ("owner", {"userId": ["u1"]}, "userId"),
        ("property", {"propertyId": "p1", "bedrooms": -1}, "bedrooms"),
        ("property", {"propertyId": "p1", "status": "sold"}, "status"),
        ("property", {"propertyId": True}, "propertyId"),
        ("enquiry", {"enquiryId": "e1", "guestEmail": "@"}, "guestEmail"),
        ("booking", {"bookingId": "b1", "checkIn": "tomorrow"}, "checkIn"),
        ("membership", {"userId": "u1", "planTier": "platinum"}, "planTier"),
        ("membership", {"userId": "u1", "paymentFailureCount": "x"}, "paymentFailureCount"),
    ],
)
async def test_bad_fields_answer_422_naming_the_field(client, kind, body, field) -> None:
    response = await client.post(f"/api/crm/sync/{kind}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["success"] is False
    assert response.json()["field"] == field
    assert field in response.json()["error"]


async def test_nothing_is_written_for_a_rejected_body(client, services) -> None:
    await client.post("/api/crm/sync/owner", json={"userId": "u1", "phone": "not a phone"})
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SyncLog)) == 0
    assert (await client.get("/api/crm/sync/owner", params={"userId": "u1"})).status_code == 404


@pytest.mark.parametrize(
    ("kind", "raw", "named"),
    [
        ("property", b'{"propertyId":"p1","pricePerNight":NaN}', "pricePerNight"),
        ("property", b'{"propertyId":"p1","pricePerNight":1e400}', "pricePerNight"),
        ("owner", b'{"userId":"u1","customFields":{"x":Infinity}}', "customFields"),
        ("owner", b'{"userId":"u1","extra":[1, -Infinity]}', "extra"),
        ("owner", b'{"userId":"u1","name":"nul\\u0000here"}', "name"),
        ("owner", b'{"userId":"u1","customFields":{"k\\u0000":1}}', "customFields"),
    ],
)
async def test_values_that_cannot_be_stored_are_refused(client, services, kind, raw, named) -> None:
    response = await client.post(
        f"/api/crm/sync/{kind}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SyncLog)) == 0


@pytest.mark.parametrize(
    "raw",
    [b"{bad json", b"", b"[]", b"null", b"42", b'"text"', b"\xff\xfe", b'{"userId": {"a": 1}}'],
)
async def test_malformed_bodies_are_4xx_never_500(client, raw) -> None:
    response = await client.post(
        "/api/crm/sync/owner", content=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False


async def test_get_without_the_id_names_the_query_field(client) -> None:
    response = await client.get("/api/crm/sync/property")
    assert response.status_code == 422
    assert response.json()["field"] == "propertyId"
    nul = await client.get("/api/crm/sync/property", params={"propertyId": "p\x00"})
    assert nul.status_code == 422


async def test_keys_and_scopes(anonymous, ops) -> None:
    async with anonymous(None) as nobody:
        assert (await nobody.post("/api/crm/sync/owner", json=OWNER)).status_code == 401
    async with anonymous("wrong-key") as stranger:
        assert (await stranger.post("/api/crm/sync/owner", json=OWNER)).status_code == 401
    async with anonymous(None) as nobody:
        assert (await nobody.get("/healthz")).status_code == 200
    from tests.conftest import SYNC_KEY

    async with anonymous(SYNC_KEY) as website:
        assert (await website.post("/api/crm/sync/owner", json=OWNER)).status_code == 200
        forbidden = await website.put("/api/crm/mock/faults", json={"mode": "reject"})
        assert forbidden.status_code == 403
        assert "ops" in forbidden.json()["error"]
    assert (await ops.put("/api/crm/mock/faults", json={"mode": "reject"})).status_code == 200
    assert (await ops.post("/api/crm/sync/owner", json={**OWNER, "name": "J"})).status_code == 502


async def test_prefer_respond_async_answers_202_with_a_status_url(client) -> None:
    response = await client.post(
        "/api/crm/sync/owner", json=OWNER, headers={"Prefer": "respond-async"}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["syncStatus"] == "pending"
    assert body["statusUrl"] == "/api/crm/sync/owner?userId=user_123abc"


async def test_a_permanent_rejection_is_502_with_reason_and_log(client, mock, services) -> None:
    mock.faults = Faults(mode="reject")
    response = await client.post("/api/crm/sync/owner", json=OWNER)
    assert response.status_code == 502
    body = response.json()
    assert body["success"] is False
    assert "rejected by request" in body["error"]
    assert body["syncStatus"] == "failed"
    async with services.sessions() as session:
        row = await session.get(SyncLog, body["syncLogId"])
    assert row is not None and row.status == "failed" and row.http_status == 400
    assert row.request["properties"]["email"] == "john@example.com"
    assert row.response["message"] == "rejected by request"
    status = await client.get("/api/crm/sync/owner", params={"userId": "user_123abc"})
    assert status.json()["syncStatus"] == "failed"
    assert "rejected by request" in status.json()["lastError"]


async def test_a_property_before_its_owner_waits_then_goes_with_the_owner_id(
    client, mock, services
) -> None:
    prop = {"propertyId": "p1", "ownerId": "late_owner", "title": "Cottage"}
    early = await client.post(
        "/api/crm/sync/property", json=prop, headers={"Prefer": "respond-async"}
    )
    assert early.status_code == 202
    for _ in range(200):  # until the worker has looked at it
        waiting = await client.get("/api/crm/sync/property", params={"propertyId": "p1"})
        if waiting.json()["lastError"]:
            break
        await services.loops["worker"].run_once()
    assert waiting.json()["syncStatus"] == "pending"
    assert "waiting for owner late_owner" in waiting.json()["lastError"]
    assert ("property", "p1") not in mock.store  # not sent without its association

    owner = await client.post(
        "/api/crm/sync/owner", json={"userId": "late_owner", "email": "late@example.com"}
    )
    owner_crm_id = owner.json()["crmId"]
    for _ in range(200):
        status = await client.get("/api/crm/sync/property", params={"propertyId": "p1"})
        if status.json()["syncStatus"] == "synced":
            break
        await services.loops["worker"].run_once()
    assert status.json()["syncStatus"] == "synced"
    async with services.sessions() as session:
        row = await session.scalar(
            select(SyncLog).where(SyncLog.entity_type == "property", SyncLog.status == "success")
        )
    assert row is not None and row.request["parentId"] == owner_crm_id


async def test_health_and_readiness(anonymous) -> None:
    async with anonymous(None) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = await c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True


async def test_status_shows_each_provider(client, mock) -> None:
    await client.post("/api/crm/sync/owner", json=OWNER)
    mock.faults = Faults(mode="reject")
    await client.post("/api/crm/sync/owner", json={"userId": "u2", "email": "u2@example.com"})
    await client.post(
        "/api/crm/sync/property",
        json={"propertyId": "p9", "ownerId": "nobody", "title": "T"},
        headers={"Prefer": "respond-async"},
    )
    body = (await client.get("/api/crm/status")).json()
    mock_status = body["providers"]["mock"]
    assert mock_status["connected"] is True
    assert mock_status["lastSyncedAt"].endswith("Z")
    assert mock_status["failures"] == 1
    assert mock_status["queueDepth"] == 1  # the property waiting for its owner


async def test_no_secret_reaches_the_sync_log_or_the_logs(client, mock, services, caplog) -> None:
    from tests.conftest import OPS_KEY, SYNC_KEY

    caplog.set_level("DEBUG")
    await client.post("/api/crm/sync/owner", json=OWNER)
    mock.faults = Faults(mode="reject")
    await client.post("/api/crm/sync/owner", json={**OWNER, "name": "Changed"})
    async with services.sessions() as session:
        rows = list(await session.scalars(select(SyncLog)))
    assert len(rows) == 2
    dumped = " ".join(repr((r.request, r.response, r.error)) for r in rows) + caplog.text
    for secret in (SYNC_KEY, OPS_KEY):
        assert secret not in dumped
