"""Three `crm-sync worker` processes share one HubSpot rate limit through PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import transaction
from app.fakes.hubspot import FakeHubSpot
from app.models import JobStatus, LinkStatus, ProviderLink, SyncJob
from app.records import Kind
from app.sync.accept import accept_one as accept
from tests.e2e.conftest import HUBSPOT_TOKEN, serve

ROOT = Path(__file__).resolve().parents[2]
CRM_SYNC = Path(sys.executable).parent / "crm-sync"
LIMIT = 50
OWNERS = 160
PROPERTIES = 40


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_three_workers_never_exceed_the_shared_limit(
    db_url, sessions, free_port, tmp_path
) -> None:
    async with transaction(sessions) as session:
        for n in range(OWNERS):
            fields = {"userId": f"u{n}", "name": f"Owner {n}", "email": f"o{n}@example.com"}
            await accept(session, Kind.owner, fields, ["hubspot"], "GB")
        for n in range(PROPERTIES):
            fields = {"propertyId": f"p{n}", "ownerId": f"u{n}", "title": f"House {n}"}
            await accept(session, Kind.property, fields, ["hubspot"], "GB")

    fake = FakeHubSpot(rate_limit=LIMIT, token=HUBSPOT_TOKEN)
    async with serve(fake.asgi(), free_port()) as url:
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "CRM_PROVIDERS": "hubspot",
            "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
            "HUBSPOT_BASE_URL": url,
            "HUBSPOT_RATE_LIMIT": str(LIMIT),
            # Small batches, so 200 records make 60 requests: more than one window's worth.
            "DELIVERY_CLAIM_BATCH": "4",
            "DELIVERY_POLL_INTERVAL": "0.05",
            "DELIVERY_BACKOFF_BASE": "0.2",
            "LOG_LEVEL": "DEBUG",
        }
        logs = [tmp_path / f"worker{n}.log" for n in range(3)]
        workers = [
            await asyncio.create_subprocess_exec(
                str(CRM_SYNC),
                "worker",
                env=env,
                cwd=tmp_path,
                stdout=log.open("w"),
                stderr=asyncio.subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            async with asyncio.timeout(60):
                while True:
                    async with sessions() as session:
                        open_jobs = await session.scalar(
                            select(func.count())
                            .select_from(SyncJob)
                            .where(SyncJob.status != JobStatus.done.value)
                        )
                    if open_jobs == 0:
                        break
                    assert all(w.returncode is None for w in workers), "a worker died"
                    await asyncio.sleep(0.25)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                await asyncio.wait_for(w.wait(), 10)

    stats = fake.state.stats()
    assert stats["requests"] >= 60
    assert stats["maxInWindow"] <= LIMIT
    assert fake.rate_limited == 0
    assert len(fake.store.objects["contacts"]) == OWNERS
    assert len(fake.store.objects["listings"]) == PROPERTIES
    assert len(fake.store.associations) == PROPERTIES
    async with sessions() as session:
        synced = await session.scalar(
            select(func.count())
            .select_from(ProviderLink)
            .where(ProviderLink.status == LinkStatus.synced.value)
        )
    assert synced == OWNERS + PROPERTIES
    worked = [log.read_text() for log in logs]
    assert sum("delivering to hubspot" in text for text in worked) == 3
    assert not any(HUBSPOT_TOKEN in text for text in worked)
