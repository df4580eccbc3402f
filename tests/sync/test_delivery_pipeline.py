"""The delivery hot path: claimed jobs, records and links travel as plain rows (no ORM object
per record), and the next claim is delivered while the last one finishes, so the worker's batch
slots stay full from one claim to the next."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, select

from app.db import json_dumps, transaction
from app.main import open_services
from app.models import JobStatus, ProviderLink, Record, SyncJob, SyncLog
from app.providers.base import Action, Delivery, Outcome, Provider
from app.records import Kind
from app.sync.accept import accept_one
from app.sync.worker import Worker
from tests.conftest import drain, make_settings


class CountingCrm(Provider):
    """A CRM that takes one record a call, answers after `delay` seconds, and notes how many
    calls were in flight at once."""

    name = "mock"
    batch_size = 1

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0
        self.delivered: list[str] = []

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.delivered += [d.record_id for d in deliveries]
        return [Outcome(crm_id=f"c-{d.record_id}", action=Action.create) for d in deliveries]


@pytest.fixture
async def services(db_url: str) -> Any:
    settings = make_settings(db_url, worker_in_process=False, delivery={"claim_batch": 2})
    async with open_services(settings, with_loops=False) as running:
        yield running


async def queue_owners(services: Any, count: int) -> None:
    async with transaction(services.sessions) as session:
        for n in range(count):
            owner = {"userId": f"u{n}", "name": f"Owner {n}", "email": f"u{n}@example.com"}
            await accept_one(session, Kind.owner, owner, ["mock"], "GB")


async def test_the_next_claim_keeps_the_slots_full(services: Any) -> None:
    """Claims of 2 jobs, 1 a batch, 4 slots: one claim alone could fill only 2 of them."""
    crm = CountingCrm(delay=0.2)
    worker = Worker(services.sessions, {"mock": crm}, services.settings.delivery, concurrency=4)
    await queue_owners(services, 8)

    handled = await worker.run_once()

    assert handled == 8
    assert sorted(crm.delivered) == sorted(f"u{n}" for n in range(8))
    assert crm.most_in_flight == 4
    async with services.sessions() as session:
        statuses = list(await session.scalars(select(SyncJob.status)))
        logs = await session.scalar(select(func.count()).select_from(SyncLog))
    assert statuses == [JobStatus.done.value] * 8
    assert logs == 8


async def test_delivering_builds_no_orm_object_per_record(services: Any) -> None:
    crm = CountingCrm(delay=0.0)
    worker = Worker(services.sessions, {"mock": crm}, services.settings.delivery, concurrency=4)
    await queue_owners(services, 6)
    loaded: list[str] = []

    def note(target: Any, context: Any) -> None:
        loaded.append(type(target).__name__)

    models = (SyncJob, Record, ProviderLink, SyncLog)
    for model in models:
        event.listen(model, "load", note)
    try:
        await drain(worker)
    finally:
        for model in models:
            event.remove(model, "load", note)

    assert loaded == []
    assert len(crm.delivered) == 6
    async with services.sessions() as session:
        links = list(await session.scalars(select(ProviderLink)))
        logs = list(await session.scalars(select(SyncLog).order_by(SyncLog.id)))
    assert {link.status for link in links} == {"synced"}
    assert {link.last_log_id for link in links} == {log.id for log in logs}
    assert [log.action for log in logs] == ["create"] * 6
    assert all(log.request is None and log.crm_id for log in logs)


def test_json_is_serialised_with_orjson_and_json_takes_what_orjson_refuses() -> None:
    assert json_dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'
    # Beyond 64 bits, and a non-string key: the standard library's text, not an error.
    assert json_dumps({"n": 2**70}) == '{"n": 1180591620717411303424}'
    assert json_dumps({1: "x"}) == '{"1": "x"}'
