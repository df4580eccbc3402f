"""Leases: renewed while a slow delivery runs, and every write of an outcome fenced by the lease
token, so a worker that lost its job never overwrites a newer delivery; the CRM ends with the
newest content either way."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from app.db import transaction
from app.main import open_services
from app.models import JobStatus, ProviderLink, Record, SyncJob, SyncLog
from app.providers.base import Action, Delivery, Outcome, Provider
from app.records import Kind
from app.sync.accept import accept_one, load_record
from app.sync.worker import Worker
from tests.conftest import drain, make_settings
from tests.eventually import eventually


class SlowCrm(Provider):
    """A CRM that keeps what lands last, and holds the first delivery of `slow_name` until told
    (it lands when released: a call that arrives late)."""

    name = "mock"
    batch_size = 10

    def __init__(self, slow_name: str) -> None:
        self.slow_name = slow_name
        self.held = asyncio.Event()  # the slow call has started
        self.release = asyncio.Event()
        self.crm: dict[str, str] = {}
        self.calls: list[str] = []

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes = []
        for d in deliveries:
            name = str(d.data["name"])
            self.calls.append(name)
            if name == self.slow_name and not self.held.is_set():
                self.held.set()
                await self.release.wait()
            self.crm[d.record_id] = name  # lands now
            outcomes.append(Outcome(crm_id=f"c-{d.record_id}", action=Action.upsert))
        return outcomes


@pytest.fixture
async def services(db_url: str) -> Any:
    settings = make_settings(
        db_url, worker_in_process=False, delivery={"lease_seconds": 2.0, "provider_timeout": 30}
    )
    async with open_services(settings, with_loops=False) as running:
        yield running


async def post(services: Any, name: str) -> None:
    async with transaction(services.sessions) as session:
        await accept_one(session, Kind.owner, {"userId": "u1", "name": name}, ["mock"], "GB")


async def state(services: Any) -> tuple[str, str | None, str | None]:
    """(job status, hash the link confirmed, the record's hash)."""
    async with services.sessions() as session:
        job = (await session.scalars(select(SyncJob))).one()
        link = (await session.scalars(select(ProviderLink))).one_or_none()
        record = (await session.scalars(select(Record))).one()
    return job.status, link.confirmed_hash if link else None, record.content_hash


async def race(services: Any, crm: SlowCrm, a: Worker, b: Worker) -> None:
    """A claims v1 and is slow at the CRM; v2 arrives; B keeps looking for work for three
    lease lengths; then A's call lands. Both drain."""
    lease = services.settings.delivery.lease_seconds
    await post(services, "v1")
    slow = asyncio.create_task(a.run_once())
    await asyncio.wait_for(crm.held.wait(), 5)
    await post(services, "v2")
    deadline = asyncio.get_running_loop().time() + 3 * lease
    while asyncio.get_running_loop().time() < deadline:
        await b.run_once()
        await asyncio.sleep(0.05)
    crm.release.set()
    await slow
    await drain(b)
    await drain(a)


async def test_a_slow_delivery_keeps_its_lease_and_the_change_goes_round_after_it(
    services,
) -> None:
    crm = SlowCrm("v1")
    a = Worker(services.sessions, {"mock": crm}, services.settings.delivery, name="a")
    b = Worker(services.sessions, {"mock": crm}, services.settings.delivery, name="b")
    await race(services, crm, a, b)

    assert crm.calls == ["v1", "v2"]  # B never took A's job: A's lease was renewed
    assert crm.crm == {"u1": "v2"}
    status, confirmed, current = await state(services)
    assert status == JobStatus.done and confirmed == current


async def test_a_worker_that_lost_its_lease_writes_nothing_and_the_newest_goes_again(
    services,
) -> None:
    crm = SlowCrm("v1")
    a = Worker(services.sessions, {"mock": crm}, services.settings.delivery, name="a")
    b = Worker(services.sessions, {"mock": crm}, services.settings.delivery, name="b")
    a.renew_every = 3600.0  # A stalls: its lease runs out and B takes the job over
    await race(services, crm, a, b)

    assert crm.calls[:2] == ["v1", "v2"]  # B delivered v2 while A's v1 was still in flight
    assert crm.crm == {"u1": "v2"}  # ...and v1 landing late was overwritten again
    status, confirmed, current = await state(services)
    assert status == JobStatus.done and confirmed == current
    async with services.sessions() as session:
        logged = [
            (row.status, (row.request or {}).get("name"))
            for row in await session.scalars(select(SyncLog).order_by(SyncLog.id))
        ]
    assert ("success", "v1") not in logged  # A's stale outcome was never written


async def test_the_lease_covers_each_claimed_batch_while_it_waits_its_turn(services) -> None:
    """Batches claimed together but delivered one after another (concurrency 1) keep their
    leases: nobody else delivers them meanwhile."""
    crm = SlowCrm("slow")
    a = Worker(services.sessions, {"mock": crm}, services.settings.delivery, concurrency=1)
    b = Worker(services.sessions, {"mock": crm}, services.settings.delivery, name="b")
    async with transaction(services.sessions) as session:
        await accept_one(session, Kind.owner, {"userId": "u1", "name": "slow"}, ["mock"], "GB")
        await accept_one(session, Kind.property, {"propertyId": "p", "name": "x"}, ["mock"], "GB")
    slow = asyncio.create_task(a.run_once())
    await asyncio.wait_for(crm.held.wait(), 5)
    deadline = asyncio.get_running_loop().time() + 2 * services.settings.delivery.lease_seconds
    while asyncio.get_running_loop().time() < deadline:
        await b.run_once()
        await asyncio.sleep(0.05)
    crm.release.set()
    await slow
    assert sorted(crm.calls) == ["slow", "x"]

    async def settled() -> None:
        async with services.sessions() as session:
            jobs = list(await session.scalars(select(SyncJob)))
        assert {j.status for j in jobs} == {JobStatus.done}

    await eventually(settled)


async def test_an_accept_holding_its_record_never_deadlocks_with_the_delivery_writing_it(
    services, database_url
) -> None:
    """An accept locks the record, then queues its job; a worker holds the job (its fence),
    then writes the record's link, whose foreign key takes KEY SHARE on the record. The
    accept's lock must not conflict with that, or the two wait for each other."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    crm = SlowCrm("v1")
    worker = Worker(services.sessions, {"mock": crm}, services.settings.delivery)
    await post(services, "v1")
    delivering = asyncio.create_task(worker.run_once())
    await asyncio.wait_for(crm.held.wait(), 5)
    async with services.sessions() as session, session.begin():
        assert await load_record(session, Kind.owner, "u1", for_update=True) is not None
        crm.release.set()  # the worker writes its outcome while we hold the record

        async def delivered() -> None:
            assert (await state(services))[0] == JobStatus.done

        await eventually(delivered, seconds=5)
        await accept_one(session, Kind.owner, {"userId": "u1", "name": "v2"}, ["mock"], "GB")
    await delivering
    await drain(worker)
    assert crm.crm == {"u1": "v2"}
