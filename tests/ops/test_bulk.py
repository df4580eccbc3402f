"""Bulk runs driven step by step: resuming after a crash, overlapping runs, exact tallies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select, update

from app.db import make_engine, make_sessionmaker, transaction, utcnow
from app.main import open_services
from app.models import SyncJob
from app.ops.bulk import BulkRequest, BulkRunner, BulkRuns, create_run, get_run, tally
from app.ops.models import BulkRun, BulkStatus
from app.providers.base import Delivery, Outcome
from app.providers.mock import MockProvider
from app.providers.registry import FACTORIES
from app.records import Kind
from app.settings import BulkSettings
from app.sync.worker import Worker
from tests.conftest import drain, make_settings
from tests.ops.helpers import owners, seed


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Any]:
    """The services with no worker running: the test decides when jobs are delivered."""
    settings = make_settings(db_url, worker_in_process=False)
    async with open_services(settings, with_loops=False) as services:
        yield services


def worker_for(services: Any) -> Worker:
    return Worker(services.sessions, services.providers, services.settings.delivery)


def runner_for(services: Any, chunk_size: int = 1000, **kw: Any) -> BulkRunner:
    settings = BulkSettings(chunk_size=chunk_size, poll_interval=0.01, lease_seconds=30)
    return BulkRunner(services.sessions, settings, **kw)


async def start(services: Any, runner: BulkRunner, **request: Any) -> str:
    async with transaction(services.sessions) as session:
        run = await create_run(
            session, services.settings, BulkRequest(**request), runner=runner.name
        )
    return run.id


async def run_to_end(services: Any, runner: BulkRunner, bulk_id: str) -> dict[str, Any]:
    """The runner and a worker side by side, as in the API process."""
    worker = worker_for(services)
    task = asyncio.create_task(runner.run(bulk_id))
    async with asyncio.timeout(20):
        while not task.done():
            await worker.run_once()
            await asyncio.sleep(0.005)
    assert await task
    async with services.sessions() as session:
        run = await get_run(session, bulk_id)
        assert run.status == BulkStatus.completed, run.error
        return dict(run.results or {})


async def finish_swept(services: Any, runs: BulkRuns, bulk_id: str) -> dict[str, Any]:
    """Deliver while the run the sweep picked up goes to its end."""
    worker = worker_for(services)
    async with asyncio.timeout(20):
        while bulk_id in runs.tasks:
            await worker.run_once()
            await asyncio.sleep(0.005)
    async with services.sessions() as session:
        run = await get_run(session, bulk_id)
    assert run.status == BulkStatus.completed, run.error
    return dict(run.results or {})


async def test_a_run_cut_off_mid_way_resumes_after_its_last_chunk_without_double_counting(
    services,
) -> None:
    await seed(services.sessions, Kind.owner, owners(7))
    holder: dict[str, asyncio.Task[bool]] = {}

    def crash_after_first_chunk() -> None:
        holder["task"].cancel()  # the process dies right after a chunk committed

    first = runner_for(services, chunk_size=3, kick=crash_after_first_chunk)
    bulk_id = await start(services, first, syncType="owners")
    holder["task"] = asyncio.create_task(first.run(bulk_id))
    with pytest.raises(asyncio.CancelledError):
        await holder["task"]
    async with services.sessions() as session:
        run = await get_run(session, bulk_id)
    assert (run.status, run.cursor_kind, run.counts) == (
        "enqueueing",
        "owner",
        {"owner": {"queued": 3, "skipped": 0}},
    )
    assert run.runner is None  # let go, so the next process takes it at once

    runs = BulkRuns(runner_for(services, chunk_size=3))
    assert await runs.sweep() == [bulk_id]
    results = await finish_swept(services, runs, bulk_id)
    assert results["owners"]["created"] == 7
    assert results["owners"]["total"] == 7


async def test_a_run_whose_runner_stopped_renewing_is_taken_over(services) -> None:
    await seed(services.sessions, Kind.owner, owners(2))
    ghost = runner_for(services, name="gone-host:1")
    bulk_id = await start(services, ghost, syncType="owners")
    runs = BulkRuns(runner_for(services))
    assert await runs.sweep() == []  # its lease still runs
    async with transaction(services.sessions) as session:
        await session.execute(
            update(BulkRun).where(BulkRun.id == bulk_id).values(lease_until=utcnow())
        )
    assert await runs.sweep() == [bulk_id]
    results = await finish_swept(services, runs, bulk_id)
    assert results["owners"]["created"] == 2


async def queued(services: Any, runner: BulkRunner, bulk_id: str) -> asyncio.Task[bool]:
    """Start the run and return once every job is queued (no worker runs meanwhile)."""
    task = asyncio.create_task(runner.run(bulk_id))
    async with asyncio.timeout(10):
        while True:
            async with services.sessions() as session:
                if (await get_run(session, bulk_id)).status == "delivering":
                    return task
            await asyncio.sleep(0.01)


async def test_a_later_run_takes_over_queued_jobs_and_the_first_says_so(services) -> None:
    await seed(services.sessions, Kind.owner, owners(4))
    runner = runner_for(services)
    first_id = await start(services, runner, syncType="owners")
    first = await queued(services, runner, first_id)
    second_id = await start(services, runner, syncType="owners", force=True)
    second = await queued(services, runner, second_id)
    await drain(worker_for(services))
    await asyncio.gather(first, second)
    async with services.sessions() as session:
        first_results = (await get_run(session, first_id)).results
        second_results = (await get_run(session, second_id)).results
    assert first_results is not None and second_results is not None
    assert first_results["owners"]["superseded"] == 4
    assert first_results["owners"]["synced"] == 0
    assert second_results["owners"]["created"] == 4
    assert second_results["owners"]["superseded"] == 0


class Rejudging(MockProvider):
    """A CRM double during whose call the record's job is flagged to go round again (what the
    worker does when a parent is delivered while its child is being judged)."""

    def __init__(self, sessions: Any) -> None:
        super().__init__()
        self.sessions = sessions

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        if self.calls == 0:
            async with transaction(self.sessions) as session:
                await session.execute(
                    update(SyncJob)
                    .where(SyncJob.id.in_([d.job_id for d in deliveries]))
                    .values(requeue=True)
                )
        return await super().deliver(kind, deliveries)


async def test_a_delivery_that_goes_round_again_and_is_skipped_counts_once_as_created(
    db_url, monkeypatch
) -> None:
    engine = make_engine(db_url)
    monkeypatch.setitem(FACTORIES, "mock", lambda ctx: Rejudging(make_sessionmaker(engine)))
    settings = make_settings(db_url, worker_in_process=False)
    async with open_services(settings, with_loops=False) as services:
        await seed(services.sessions, Kind.owner, owners(2))
        runner = runner_for(services)
        bulk_id = await start(services, runner, syncType="owners")
        results = await run_to_end(services, runner, bulk_id)
        async with services.sessions() as session:
            statuses = list(
                await session.scalars(select(SyncJob.status).where(SyncJob.bulk_id == bulk_id))
            )
    await engine.dispose()
    assert statuses == ["done", "done"]
    assert results["owners"]["created"] == 2
    assert results["owners"]["synced"] == 2
    assert results["owners"]["skipped"] == 0


async def test_progress_while_running_counts_pending_jobs(services) -> None:
    await seed(services.sessions, Kind.owner, owners(3))
    runner = runner_for(services)
    bulk_id = await start(services, runner, syncType="owners")
    task = await queued(services, runner, bulk_id)
    async with services.sessions() as session:
        results = await tally(session, await get_run(session, bulk_id))
    assert results["owners"]["pending"] == 3
    assert results["owners"]["total"] == 3
    await drain(worker_for(services))
    await task
    async with services.sessions() as session:
        done = (await get_run(session, bulk_id)).results
    assert done is not None and done["owners"]["created"] == 3
    assert done["owners"]["pending"] == 0
