"""Deletes end to end: the worker against the fake HubSpot and the fake TreadSoft."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.main import create_app
from app.settings import TreadSoftSettings
from tests.conftest import make_settings
from tests.e2e.conftest import TREADSOFT_KEY, TREADSOFT_SECRET, Running
from tests.e2e.test_hubspot_e2e import client, hubspot_settings, logs, run_worker

RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("owner", {"userId": "u1", "name": "Ann Owner", "email": "ann@example.com"}),
    ("property", {"propertyId": "p1", "ownerId": "u1", "title": "Barn", "bedrooms": 3}),
    (
        "enquiry",
        {"enquiryId": "e1", "propertyId": "p1", "guestName": "Eve", "guestEmail": "e@example.com"},
    ),
    ("booking", {"bookingId": "b1", "propertyId": "p1", "guestEmail": "g@example.com"}),
    ("membership", {"userId": "u1", "planTier": "silver", "status": "active"}),
]


async def sync_all(site: Any) -> None:
    async with client(site) as c:
        for kind, body in RECORDS:
            assert (await c.post(f"/api/crm/sync/{kind}", json=body)).status_code == 202
    await run_worker(site, seconds=30)


async def delete_owner_with_everything(site: Any) -> dict[str, Any]:
    async with client(site) as c:
        response = await c.delete("/api/crm/sync/owner", params={"userId": "u1", "cascade": "1"})
        assert response.status_code == 202, response.text
        await run_worker(site, seconds=30)
        return {
            kind: (await c.get(f"/api/crm/sync/{kind}", params={k: v})).json()["syncStatus"]
            for kind, k, v in (
                ("owner", "userId", "u1"),
                ("property", "propertyId", "p1"),
                ("enquiry", "enquiryId", "e1"),
                ("booking", "bookingId", "b1"),
                ("membership", "userId", "u1"),
            )
        }


@pytest.fixture
async def hubspot_site(db_url: str, fake_hubspot: Running) -> AsyncIterator[Any]:
    settings = make_settings(
        db_url,
        crm_providers="hubspot",
        worker_in_process=False,
        hubspot=hubspot_settings(fake_hubspot.url),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_hubspot_archives_everything_children_first(hubspot_site, fake_hubspot) -> None:
    await sync_all(hubspot_site)
    await fake_hubspot.control("PUT", "/faults", json={"mode": "error", "count": 1, "status": 503})

    statuses = await delete_owner_with_everything(hubspot_site)

    assert set(statuses.values()) == {"deleted"}
    assert await fake_hubspot.control("GET", "/objects/0-420") == []
    assert await fake_hubspot.control("GET", "/objects/deals") == []
    contacts = await fake_hubspot.control("GET", "/objects/contacts")
    # The guests stay: people who may enquire again; the owner's contact is archived.
    assert {c["properties"]["email"] for c in contacts} == {"e@example.com", "g@example.com"}
    [archived] = await fake_hubspot.control("GET", "/archived/contacts")
    assert archived["properties"]["email"] == "ann@example.com"
    assert archived["properties"]["membership_tier"] == ""  # cleared before the archive
    deletes = [r for r in await logs(hubspot_site) if r.action == "delete"]
    done = [r.entity_type for r in deletes if r.status == "success"]
    assert done.index("owner") == len(done) - 1
    assert any(r.status == "failed" and r.http_status == 503 for r in deletes)  # retried

    async with client(hubspot_site) as c:
        await c.post("/api/crm/sync/owner", json=RECORDS[0][1])
        await run_worker(hubspot_site)
        again = (await c.get("/api/crm/sync/owner", params={"userId": "u1"})).json()
    assert again["syncStatus"] == "synced"
    [ann] = [
        c
        for c in await fake_hubspot.control("GET", "/objects/contacts")
        if c["properties"]["email"] == "ann@example.com"
    ]
    assert ann["id"] == again["crmId"] != archived["id"]  # created anew


@pytest.fixture
async def treadsoft_site(db_url: str, fake_treadsoft: Running) -> AsyncIterator[Any]:
    treadsoft = TreadSoftSettings(
        _env_file=None,  # type: ignore[call-arg]
        url=fake_treadsoft.url,
        key=TREADSOFT_KEY,
        secret=TREADSOFT_SECRET,
        timeout=0.5,
    )
    settings = make_settings(
        db_url, crm_providers="treadsoft", worker_in_process=False, treadsoft=treadsoft
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_treadsoft_deletes_every_row_once(treadsoft_site, fake_treadsoft) -> None:
    await sync_all(treadsoft_site)
    rows = fake_treadsoft.fake.store.rows
    assert {r: len(v) for r, v in rows.items()} == {
        "contacts": 1,
        "properties": 1,
        "enquiries": 1,
        "bookings": 1,
    }
    # One DELETE answered 404 (gone already on TreadSoft's side): done all the same.
    rows["bookings"].clear()

    statuses = await delete_owner_with_everything(treadsoft_site)

    assert set(statuses.values()) == {"deleted"}
    assert {r: len(v) for r, v in rows.items()} == dict.fromkeys(rows, 0)
    deletes = [(r.entity_type, r.http_status) for r in await logs(treadsoft_site)]
    assert ("booking", 404) in deletes
    assert deletes[-1] == ("owner", 204)
