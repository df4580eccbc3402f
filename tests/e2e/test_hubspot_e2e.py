"""The website's calls, delivered by the worker to the fake HubSpot, as the website and HubSpot see
them: records synced, one object per record in HubSpot, failures where they belong."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.main import create_app
from app.models import JobStatus, SyncJob, SyncLog
from app.settings import HubSpotSettings
from tests.conftest import SYNC_KEY, drain, make_settings
from tests.e2e.conftest import HUBSPOT_TOKEN, Running

OWNERS = [
    {"userId": f"u{n}", "name": f"Owner {n}", "email": f"owner{n}@example.com"} for n in range(5)
]


def hubspot_settings(url: str, **kw: Any) -> HubSpotSettings:
    values: dict[str, Any] = {
        "access_token": HUBSPOT_TOKEN,
        "base_url": url,
        "timeout": 0.5,
        "rate_limit": 100,
        **kw,
    }
    return HubSpotSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def site(db_url: str, fake_hubspot: Running) -> AsyncIterator[Any]:
    """The service with HubSpot as its CRM and the worker run by the test, so records queue up
    into real batches first."""
    settings = make_settings(
        db_url,
        crm_providers="hubspot",
        worker_in_process=False,
        hubspot=hubspot_settings(fake_hubspot.url),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {SYNC_KEY}", "Prefer": "respond-async"},
    )


async def run_worker(app: Any, seconds: float = 20.0) -> None:
    from app.sync.worker import Worker

    services = app.state.services
    worker = Worker(services.sessions, services.providers, services.settings.delivery)
    await drain(worker, seconds=seconds)


async def jobs(app: Any) -> list[SyncJob]:
    async with app.state.services.sessions() as session:
        return list(await session.scalars(select(SyncJob).order_by(SyncJob.id)))


async def logs(app: Any) -> list[SyncLog]:
    async with app.state.services.sessions() as session:
        return list(await session.scalars(select(SyncLog).order_by(SyncLog.id)))


async def test_every_kind_reaches_hubspot_with_its_associations(site, fake_hubspot) -> None:
    async with client(site) as c:
        for path, body in (
            ("owner", {"userId": "u1", "name": "Ann Owner", "email": "Ann@Example.com"}),
            ("property", {"propertyId": 123, "ownerId": "u1", "title": "Barn", "bedrooms": 4}),
            (
                "booking",
                {
                    "bookingId": "bk1",
                    "propertyId": "123",
                    "guestName": "Gus Guest",
                    "guestEmail": "gus@example.com",
                    "checkIn": "2026-05-01",
                    "totalPrice": 1000,
                    "currency": "GBP",
                    "status": "confirmed",
                },
            ),
            ("enquiry", {"enquiryId": "e1", "propertyId": "123", "guestEmail": "eve@example.com"}),
            ("membership", {"userId": "u1", "planTier": "gold", "status": "active"}),
        ):
            assert (await c.post(f"/api/crm/sync/{path}", json=body)).status_code == 202

        await run_worker(site)

        owner = (await c.get("/api/crm/sync/owner", params={"userId": "u1"})).json()
        listing = (await c.get("/api/crm/sync/property", params={"propertyId": "123"})).json()
        booking = (await c.get("/api/crm/sync/booking", params={"bookingId": "bk1"})).json()

    assert owner["syncStatus"] == listing["syncStatus"] == booking["syncStatus"] == "synced"
    contacts = await fake_hubspot.control("GET", "/objects/contacts")
    by_email = {c["properties"]["email"]: c for c in contacts}
    assert set(by_email) == {"ann@example.com", "gus@example.com", "eve@example.com"}
    ann = by_email["ann@example.com"]
    assert ann["id"] == owner["crmId"]
    assert ann["properties"]["website_user_id"] == "u1"
    assert ann["properties"]["membership_tier"] == "gold"
    [stored_listing] = await fake_hubspot.control("GET", "/objects/0-420")
    assert stored_listing["properties"]["website_property_id"] == "123"
    deals = await fake_hubspot.control("GET", "/objects/deals")
    assert {d["properties"].get("website_booking_id") for d in deals} >= {"bk1"}
    pairs = {
        (a["from"][0], a["to"][0], a["from"][1], a["to"][1])
        for a in await fake_hubspot.control("GET", "/associations")
    }
    assert ("listings", "contacts", listing["crmId"], owner["crmId"]) in pairs
    assert ("deals", "listings", booking["crmId"], listing["crmId"]) in pairs
    assert ("deals", "contacts", booking["crmId"], by_email["gus@example.com"]["id"]) in pairs


async def test_one_malformed_email_fails_alone_with_hubspots_message(site, fake_hubspot) -> None:
    bad = {"userId": "bad", "name": "Jöhn", "email": "jöhn@example.com"}
    async with client(site) as c:
        for body in [*OWNERS[:2], bad, *OWNERS[2:]]:
            assert (await c.post("/api/crm/sync/owner", json=body)).status_code == 202

        await run_worker(site)

        statuses = {
            o["userId"]: (await c.get("/api/crm/sync/owner", params={"userId": o["userId"]})).json()
            for o in [*OWNERS, bad]
        }

    stats = await fake_hubspot.control("GET", "/stats")
    assert stats["requests"] == 1  # one batch of six
    assert all(statuses[o["userId"]]["syncStatus"] == "synced" for o in OWNERS)
    assert statuses["bad"]["syncStatus"] == "failed"
    assert "Email address jöhn@example.com is invalid" in statuses["bad"]["lastError"]
    [failed] = [row for row in await logs(site) if row.status == "failed"]
    assert failed.entity_id == "bad" and "jöhn@example.com is invalid" in failed.error
    assert failed.response["category"] == "VALIDATION_ERROR"
    assert len(await fake_hubspot.control("GET", "/objects/contacts")) == len(OWNERS)


@pytest.mark.parametrize("mode", ["timeout", "error", "drop", "rate_limit"])
async def test_faults_lose_nothing_and_duplicate_nothing(site, fake_hubspot, mode) -> None:
    await fake_hubspot.control(
        "PUT", "/faults", json={"mode": mode, "count": 2, "when": "after", "delay": 1.0}
    )
    async with client(site) as c:
        for body in OWNERS:
            assert (await c.post("/api/crm/sync/owner", json=body)).status_code == 202
        await c.post("/api/crm/sync/property", json={"propertyId": "p1", "ownerId": "u0"})

        await run_worker(site, seconds=30)

    stats = await fake_hubspot.control("GET", "/stats")
    assert stats["faultsServed"] == {mode: 2}
    assert {j.status for j in await jobs(site)} == {JobStatus.done.value}
    contacts = await fake_hubspot.control("GET", "/objects/contacts")
    assert sorted(c["properties"]["website_user_id"] for c in contacts) == [
        o["userId"] for o in OWNERS
    ]
    assert len(await fake_hubspot.control("GET", "/objects/0-420")) == 1
    failures = [row for row in await logs(site) if row.status == "failed"]
    assert failures, "the faults were logged"
    assert all(j.failing_since is None for j in await jobs(site))  # cleared by the success


async def test_bad_credentials_hold_the_jobs_instead_of_failing_them(
    db_url, fake_hubspot, caplog
) -> None:
    settings = make_settings(
        db_url,
        crm_providers="hubspot",
        worker_in_process=False,
        hubspot=hubspot_settings(fake_hubspot.url, access_token="pat-wrong-token-123"),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client(app) as c:
        await c.post("/api/crm/sync/owner", json=OWNERS[0])
        from app.sync.worker import Worker

        services = app.state.services
        await Worker(services.sessions, services.providers, settings.delivery).run_once()
        [job] = await jobs(app)
        status = (await c.get("/api/crm/sync/owner", params={"userId": "u0"})).json()
        provider = services.providers["hubspot"]

    assert job.status == JobStatus.queued.value and job.attempts == 0
    assert status["syncStatus"] == "pending"
    assert provider.client.healthy is False and "401" in provider.client.health_error


async def test_no_token_reaches_the_sync_log_or_the_logs(site, fake_hubspot, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await fake_hubspot.control("PUT", "/faults", json={"mode": "error", "count": 1})
    async with client(site) as c:
        for body in [*OWNERS, {"userId": "bad", "email": "jöhn@example.com"}]:
            await c.post("/api/crm/sync/owner", json=body)
        await run_worker(site)

    rows = await logs(site)
    assert len(rows) >= len(OWNERS) + 1
    dumped = json.dumps(
        [[r.request, r.response, r.error] for r in rows], default=str, ensure_ascii=False
    )
    assert HUBSPOT_TOKEN not in dumped
    assert HUBSPOT_TOKEN not in caplog.text
    assert "Bearer" not in dumped


async def test_the_website_hears_hubspots_refusal_as_a_502(db_url, fake_hubspot) -> None:
    settings = make_settings(
        db_url, crm_providers="hubspot", hubspot=hubspot_settings(fake_hubspot.url)
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client(app) as c:
        c.headers.pop("Prefer")
        ok = await c.post("/api/crm/sync/owner", json=OWNERS[0])
        refused = await c.post(
            "/api/crm/sync/owner", json={"userId": "bad", "email": "jöhn@example.com"}
        )

    assert ok.status_code == 200, ok.text
    assert ok.json()["message"] == "Owner synced to CRM successfully"
    assert refused.status_code == 502, refused.text
    assert refused.json()["success"] is False
    assert "Email address jöhn@example.com is invalid" in refused.json()["error"]
