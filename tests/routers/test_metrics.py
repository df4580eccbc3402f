"""/metrics: what the workers did and how the queue stands, in Prometheus' text format."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from app import metrics
from app.db import transaction, utcnow
from app.models import Record, SyncJob
from app.providers.mock import Faults
from app.records import Kind
from app.sync.outbox import enqueue
from tests.ops.helpers import owners, seed


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_expose_jobs_latency_queue_errors_and_rate_limit_waits(
    client, ops, mock, anonymous
) -> None:
    async with anonymous(None) as scraper:  # Prometheus scrapes without a key
        before = samples((await scraper.get("/metrics")).text)
    ok = ("crm_sync_jobs_total", (("outcome", "success"), ("provider", "mock")))
    rejected = ("crm_sync_provider_errors_total", (("error", "rejected"), ("provider", "mock")))

    await client.post("/api/crm/sync/owner", json=owners(1)[0])
    mock.faults = Faults(mode="reject")
    await client.post("/api/crm/sync/owner", json=owners(1, start=2)[0])
    mock.faults = Faults()
    metrics.wait_for_rate_limit("mock", 1.5)  # as an adapter's limiter would
    # Queued for later: one job due in the future is depth, not age.
    await client.post(
        "/api/crm/sync/property",
        json={"propertyId": "p1", "ownerId": "nobody-yet"},
        headers={"Prefer": "respond-async"},
    )

    async with anonymous(None) as scraper:
        response = await scraper.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)
    assert after[ok] - before.get(ok, 0) == 1
    assert after[rejected] - before.get(rejected, 0) == 1
    failed_jobs = ("crm_sync_jobs_total", (("outcome", "failed"), ("provider", "mock")))
    assert after[failed_jobs] - before.get(failed_jobs, 0) == 1
    wait = ("crm_sync_rate_limit_wait_seconds_total", (("provider", "mock"),))
    assert after[wait] - before.get(wait, 0) == 1.5
    buckets = [
        k for k in after if k[0] == "crm_sync_delivery_seconds_bucket" and ("kind", "owner") in k[1]
    ]
    assert buckets
    # Database-wide gauges, read on this scrape.
    assert after[("crm_sync_failed_jobs", (("provider", "mock"), ("status", "failed")))] == 1
    depth = sum(
        after[("crm_sync_queue_depth", (("provider", "mock"), ("status", s)))]
        for s in ("queued", "running", "waiting")
    )
    assert depth == 1  # the property, waiting for its owner
    assert ("crm_sync_oldest_job_age_seconds", (("provider", "mock"),)) in after
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert {
        "crm_sync_jobs": "counter",
        "crm_sync_delivery_seconds": "histogram",
        "crm_sync_provider_errors": "counter",
        "crm_sync_rate_limit_wait_seconds": "counter",
        "crm_sync_queue_depth": "gauge",
        "crm_sync_failed_jobs": "gauge",
        "crm_sync_oldest_job_age_seconds": "gauge",
    }.items() <= families.items()


async def test_oldest_job_age_is_how_long_the_oldest_due_job_waited(sessions) -> None:
    await seed(sessions, Kind.owner, owners(2))
    async with transaction(sessions) as session:
        ids = list(await session.scalars(select(Record.id).order_by(Record.id)))
        await enqueue(session, ids, ["mock"])
        await session.execute(
            update(SyncJob)
            .where(SyncJob.record_id == ids[0])
            .values(run_after=utcnow() - timedelta(seconds=120))
        )
    async with sessions() as session:
        await metrics.read_queue(session, ["mock"])
    exposed = samples(generate_latest(REGISTRY).decode())
    age = exposed[("crm_sync_oldest_job_age_seconds", (("provider", "mock"),))]
    assert 120 <= age < 130
    assert exposed[("crm_sync_queue_depth", (("provider", "mock"), ("status", "queued")))] == 2


async def test_time_held_by_a_rate_limiter_is_counted() -> None:
    from app.providers.ratelimit import make_rate_limiter

    limiter = make_rate_limiter(None, "test-bucket", 1, window=0.2, margin=0.0)
    labels = {"provider": "test-bucket"}
    before = REGISTRY.get_sample_value("crm_sync_rate_limit_wait_seconds_total", labels) or 0.0
    assert await limiter.acquire() == 0
    waited = await limiter.acquire()  # the second call in the window is held
    after = REGISTRY.get_sample_value("crm_sync_rate_limit_wait_seconds_total", labels)
    assert waited > 0
    assert after == pytest.approx(before + waited)
