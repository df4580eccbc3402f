"""A provider that fails every call is held by its circuit breaker and probed; its queued records
use nothing up meanwhile, and once it answers again everything is delivered, none dead, with no
one pressing retry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import JobStatus, SyncJob
from app.providers.mock import Faults
from tests.conftest import make_settings
from tests.eventually import eventually
from tests.ops.helpers import owners


async def job_states(services: Any) -> dict[str, int]:
    async with services.sessions() as session:
        rows = await session.execute(select(SyncJob.status, func.count()).group_by(SyncJob.status))
        return {status: n for status, n in rows}


async def post_all(client: Any, n: int) -> None:
    for record in owners(n):
        answer = await client.post(
            "/api/crm/sync/owner", json=record, headers={"Prefer": "respond-async"}
        )
        assert answer.status_code == 202


async def test_failing_calls_open_the_breaker_hold_the_jobs_and_a_probe_closes_it(
    client, ops, mock, services
) -> None:
    mock.faults = Faults(mode="transient")
    await post_all(client, 20)

    async def held() -> dict[str, Any]:
        status = (await client.get("/api/crm/status")).json()["providers"]["mock"]
        assert status["breaker"]["state"] in ("open", "half_open"), status
        return dict(status)

    status = await eventually(held)
    assert status["breaker"]["failures"] >= 5
    assert "503" in status["breaker"]["lastError"]
    metrics = (await ops.get("/metrics")).text
    assert 'crm_sync_breaker_state{provider="mock",state="closed"} 0.0' in metrics

    # Held: while it stays open only probes reach the CRM, one record each.
    calls = mock.calls
    async with services.sessions() as session:
        attempts_before = await session.scalar(select(func.sum(SyncJob.attempts)))
    await asyncio.sleep(0.5)  # a window of a few cooldowns (0.05 s doubling to 0.2 s in tests)
    probes = mock.calls - calls
    assert probes <= 6  # held: 20 queued records, yet only the odd probe
    async with services.sessions() as session:
        attempts_after = await session.scalar(select(func.sum(SyncJob.attempts)))
    assert attempts_after - attempts_before == probes  # only the probed records used a try

    mock.faults = Faults()  # the CRM is back

    async def healed() -> None:
        assert await job_states(services) == {JobStatus.done.value: 20}

    await eventually(healed)
    status = (await client.get("/api/crm/status")).json()["providers"]["mock"]
    assert status["breaker"]["state"] == "closed" and status["breaker"]["failures"] == 0
    assert len(mock.store) == 20


@pytest.fixture
def settings(db_url: str) -> Any:
    """As deployed: default backoff (1 s doubling, up to an hour), horizon and breaker."""
    return make_settings(
        db_url,
        delivery={
            "backoff_base": 1.0,
            "backoff_max": 3600.0,
            "breaker_cooldown": 5.0,
            "breaker_cooldown_max": 60.0,
            "poll_interval": 0.2,
        },
    )


@pytest.mark.slow
async def test_a_90_second_outage_ends_with_every_record_synced_and_none_dead(
    client, mock, services, database_url
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("one backend is enough for a test that waits out 90 s; the fast one runs both")
    mock.faults = Faults(mode="transient")
    await post_all(client, 200)
    await asyncio.sleep(90)  # the outage lasts this long, whatever the service does meanwhile
    assert JobStatus.dead.value not in await job_states(services)
    mock.faults = Faults()

    async def all_synced() -> None:
        assert await job_states(services) == {JobStatus.done.value: 200}

    await eventually(all_synced, seconds=120, every=1.0)
    assert len(mock.store) == 200
