"""The worker against the fake TreadSoft: records land once, whatever the faults."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.main import create_app
from app.models import JobStatus
from app.settings import TreadSoftSettings
from tests.conftest import make_settings
from tests.e2e.conftest import TREADSOFT_KEY, TREADSOFT_SECRET, Running
from tests.e2e.test_hubspot_e2e import client, jobs, logs, run_worker

RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("owner", {"userId": "u1", "name": "Ann Owner", "email": "ann@example.com"}),
    ("owner", {"userId": "u2", "name": "Bob Owner", "email": "bob@example.com"}),
    ("property", {"propertyId": "p1", "ownerId": "u1", "title": "Barn", "bedrooms": 3}),
    ("enquiry", {"enquiryId": "e1", "propertyId": "p1", "guestEmail": "g@example.com"}),
    ("booking", {"bookingId": "b1", "propertyId": "p1", "checkIn": "2026-05-01"}),
    ("membership", {"userId": "u1", "planTier": "silver", "status": "active"}),
]


@pytest.fixture
async def site(db_url: str, fake_treadsoft: Running) -> AsyncIterator[Any]:
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


async def sync_all(site: Any) -> None:
    async with client(site) as c:
        for kind, body in RECORDS:
            assert (await c.post(f"/api/crm/sync/{kind}", json=body)).status_code == 202
    await run_worker(site, seconds=30)


async def test_every_kind_is_created_once_with_its_website_id(site, fake_treadsoft) -> None:
    await sync_all(site)

    rows = fake_treadsoft.fake.store.rows
    assert {r["custom_fields"]["website_id"] for r in rows["contacts"].values()} == {"u1", "u2"}
    [listing] = rows["properties"].values()
    ann = next(r for r in rows["contacts"].values() if r["email"] == "ann@example.com")
    assert listing["ownerId"] == ann["id"]
    assert ann["membershipStatus"] == "active" and ann["membershipTier"] == "silver"
    assert len(rows["enquiries"]) == len(rows["bookings"]) == 1
    assert {j.status for j in await jobs(site)} == {JobStatus.done.value}


@pytest.mark.parametrize("mode", ["timeout", "error", "drop", "rate_limit"])
async def test_faults_lose_nothing_and_duplicate_nothing(site, fake_treadsoft, mode) -> None:
    await fake_treadsoft.control(
        "PUT",
        "/faults",
        json={"mode": mode, "count": 3, "when": "after", "delay": 1.0, "path_prefix": "/api/v1"},
    )

    await sync_all(site)

    stats = await fake_treadsoft.control("GET", "/stats")
    assert stats["faultsServed"] == {mode: 3}
    assert stats["rows"] == {"contacts": 2, "properties": 1, "enquiries": 1, "bookings": 1}
    assert {j.status for j in await jobs(site)} == {JobStatus.done.value}


async def test_no_key_or_secret_reaches_the_sync_log_or_the_logs(
    site, fake_treadsoft, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    await fake_treadsoft.control("PUT", "/faults", json={"mode": "error", "count": 2})

    await sync_all(site)

    rows = await logs(site)
    dumped = json.dumps([[r.request, r.response, r.error] for r in rows], default=str)
    assert len(rows) >= len(RECORDS)
    for secret in (TREADSOFT_KEY, TREADSOFT_SECRET):
        assert secret not in dumped
        assert secret not in caplog.text
