"""Delivery: retries, backoff, dead jobs, rate limits, supersede, order and leases."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.db import transaction, utcnow
from app.main import open_services
from app.models import JobStatus, SyncJob, SyncLog
from app.providers.mock import Faults
from app.records import Kind
from app.settings import DeliverySettings
from app.sync.accept import accept_one as accept
from app.sync.verdicts import backoff
from app.sync.worker import Worker
from tests.conftest import drain, make_settings
from tests.eventually import eventually

OWNER = {"userId": "u1", "name": "Ann", "email": "ann@example.com"}


@pytest.fixture
async def pipeline(db_url: str) -> Any:
    """Services without the in-process worker: the test drives a Worker itself."""
    # A retry horizon short enough to wait out in a test, long enough that a loaded machine's
    # pauses never push the few timeouts of a test past it.
    settings = make_settings(db_url, worker_in_process=False, delivery={"retry_horizon": 3.0})
    async with open_services(settings, with_loops=False) as services:
        services.loops["worker"] = Worker(services.sessions, services.providers, settings.delivery)
        yield services


async def sync(services: Any, kind: Kind = Kind.owner, **fields: Any) -> None:
    async with transaction(services.sessions) as session:
        await accept(session, kind, fields, services.settings.providers, "GB")


async def logs(services: Any, **where: Any) -> list[SyncLog]:
    async with services.sessions() as session:
        stmt = select(SyncLog).order_by(SyncLog.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(SyncLog, key) == value)
        return list(await session.scalars(stmt))


async def job(services: Any) -> SyncJob:
    async with services.sessions() as session:
        return (await session.scalars(select(SyncJob))).one()


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    settings = DeliverySettings(backoff_base=1.0, backoff_max=60.0)
    for n in range(1, 7):
        delays = [backoff(n, settings) for _ in range(200)]
        expected = min(60.0, 2 ** (n - 1))
        assert all(expected * 0.5 <= d <= expected for d in delays)
        assert len(set(delays)) > 1  # jittered, so retries of many records spread out
    assert backoff(30, settings) <= 60.0


async def test_transient_failures_retry_with_growing_delays_then_succeed(pipeline) -> None:
    # A base of 0.1 s: the growth (0.05-0.1, 0.1-0.2, 0.2-0.4 s) stands clear of a loaded
    # machine's scheduling noise.
    pipeline.loops["worker"].settings = pipeline.settings.delivery.model_copy(
        update={"backoff_base": 0.1}
    )
    mock = pipeline.providers["mock"]
    mock.faults = Faults(mode="transient", count=3)
    await sync(pipeline, **OWNER)
    await drain(pipeline.loops["worker"])
    rows = await logs(pipeline)
    assert [r.status for r in rows] == ["failed", "failed", "failed", "success"]
    assert [r.attempt for r in rows] == [1, 2, 3, 4]
    assert all(r.http_status == 503 for r in rows[:3])
    gaps = [(b.created_at - a.created_at).total_seconds() for a, b in pairwise(rows)]
    # base 0.1 s doubling with 50-100% jitter: each wait at least the previous one's floor.
    assert gaps[2] > gaps[0]
    assert mock.store[(Kind.owner, "u1")]["email"] == "ann@example.com"
    assert (await job(pipeline)).status == JobStatus.done


async def test_a_record_failing_past_the_retry_horizon_is_dead(pipeline) -> None:
    pipeline.providers["mock"].faults = Faults(mode="transient")
    await sync(pipeline, **OWNER)
    await drain(pipeline.loops["worker"])
    dead = await job(pipeline)
    failed = await logs(pipeline, status="failed")
    assert dead.status == JobStatus.dead
    assert "past the retry horizon of 0:00:03" in (dead.last_error or "")
    # Tried all along the horizon, not in a burst: the last try came a horizon after the first.
    assert (failed[-1].created_at - failed[0].created_at).total_seconds() >= 3.0
    assert dead.attempts == len(failed)


async def test_rate_limits_and_timeouts_do_not_use_up_attempts(pipeline) -> None:
    pipeline.providers["mock"].faults = Faults(mode="rate_limit", count=6, retry_after=0.05)
    await sync(pipeline, **OWNER)
    started = asyncio.get_running_loop().time()
    await drain(pipeline.loops["worker"])
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed >= 6 * 0.05  # Retry-After honoured every time
    rows = await logs(pipeline)
    assert [r.status for r in rows] == ["failed"] * 6 + ["success"]  # never dead for a 429
    assert rows[0].http_status == 429
    assert (await job(pipeline)).status == JobStatus.done

    pipeline.providers["mock"].faults = Faults(mode="timeout", count=5)
    await sync(pipeline, **{**OWNER, "name": "Ann B"})
    await drain(pipeline.loops["worker"])
    assert (await job(pipeline)).status == JobStatus.done


async def test_a_rejection_fails_at_once_and_keeps_the_old_hash(pipeline) -> None:
    mock = pipeline.providers["mock"]
    await sync(pipeline, **OWNER)
    await drain(pipeline.loops["worker"])
    mock.faults = Faults(mode="reject")
    await sync(pipeline, **{**OWNER, "name": "Ann Rejected"})
    await drain(pipeline.loops["worker"])
    failed = await job(pipeline)
    assert failed.status == JobStatus.failed and failed.attempts == 1
    # The rejected content is not confirmed: once the CRM accepts, it is sent, not skipped.
    mock.faults = Faults()
    await sync(pipeline, userId="u1")  # only the id: an explicit re-sync
    await drain(pipeline.loops["worker"])
    assert mock.store[(Kind.owner, "u1")]["name"] == "Ann Rejected"


async def test_a_batch_of_many_records_is_delivered_and_logged_per_record(pipeline) -> None:
    for n in range(120):
        await sync(pipeline, userId=f"u{n}", email=f"u{n}@example.com")
    await sync(pipeline, Kind.property, propertyId="p1", ownerId="u7", title="Barn")
    await drain(pipeline.loops["worker"])
    assert len(pipeline.providers["mock"].store) == 121
    success = await logs(pipeline, status="success")
    assert len(success) == 121
    assert len({(r.entity_type, r.entity_id) for r in success}) == 121
    async with pipeline.sessions() as session:
        statuses = set(await session.scalars(select(SyncJob.status)))
    assert statuses == {JobStatus.done}


async def test_queued_changes_fold_into_one_delivery_of_the_latest(pipeline) -> None:
    for n in range(10):
        await sync(pipeline, **{**OWNER, "name": f"Ann v{n}"})
    async with pipeline.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SyncJob)) == 1
    await drain(pipeline.loops["worker"])
    assert pipeline.providers["mock"].calls == 1
    assert pipeline.providers["mock"].store[(Kind.owner, "u1")]["name"] == "Ann v9"


async def test_a_change_during_delivery_goes_round_once_more(pipeline) -> None:
    mock = pipeline.providers["mock"]
    mock.latency = 1.0
    await sync(pipeline, **OWNER)
    delivering = asyncio.create_task(pipeline.loops["worker"].run_once())

    async def in_flight() -> None:
        assert (await job(pipeline)).status == JobStatus.running

    await eventually(in_flight)  # claimed; the mock takes 1 s to answer
    await sync(pipeline, **{**OWNER, "name": "Ann Later"})
    await delivering
    assert (await job(pipeline)).status == JobStatus.queued
    await drain(pipeline.loops["worker"])
    assert mock.store[(Kind.owner, "u1")]["name"] == "Ann Later"
    assert [r.status for r in await logs(pipeline)] == ["success", "success"]


async def test_a_dead_workers_lease_runs_out_and_the_job_is_delivered(pipeline) -> None:
    await sync(pipeline, **OWNER)
    expired = utcnow() - timedelta(seconds=1)
    async with transaction(pipeline.sessions) as session:  # as if a worker claimed it and died
        await session.execute(
            update(SyncJob).values(
                status=JobStatus.running.value, lease_until=expired, lease_token="gone"
            )
        )
    await drain(pipeline.loops["worker"])
    assert (await job(pipeline)).status == JobStatus.done
    assert len(await logs(pipeline, status="success")) == 1


async def test_crm_enabled_false_means_the_mock_alone(db_url: str) -> None:
    settings = make_settings(db_url, crm_providers="hubspot,treadsoft", crm_enabled=False)
    assert settings.providers == ["mock"]
    async with open_services(settings, with_loops=False) as services:
        await sync(services, **OWNER)
        await drain(Worker(services.sessions, services.providers, settings.delivery))
        assert len(await logs(services, status="success")) == 1
