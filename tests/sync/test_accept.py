"""The accept path on its own: merge onto the stored snapshot, one job per provider, rejections
per record with nothing of them written, and concurrent first accepts that coalesce."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db import make_engine, make_sessionmaker, transaction
from app.errors import InvalidInput, NotFound
from app.models import JobStatus, Record, SyncJob
from app.records import Kind
from app.sync.accept import accept, accept_one, validate

PROVIDERS = ["mock", "internal"]


async def records(sessions: Any) -> dict[str, dict[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(select(Record.external_id, Record.data))
        return {eid: data for eid, data in rows}


async def jobs(sessions: Any) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Record.external_id, SyncJob.provider)
            .join(Record, Record.id == SyncJob.record_id)
            .order_by(Record.external_id, SyncJob.provider)
        )
        return [(eid, provider) for eid, provider in rows]


async def test_a_new_record_is_stored_normalised_with_a_job_per_provider(sessions) -> None:
    async with transaction(sessions) as session:
        stored, queued = await accept_one(
            session, Kind.owner, {"userId": "u1", "email": "ANN@X.CO"}, PROVIDERS, "GB"
        )
    assert stored.changed and queued == 2
    assert await records(sessions) == {"u1": {"userId": "u1", "email": "ann@x.co"}}
    assert await jobs(sessions) == [("u1", "internal"), ("u1", "mock")]


async def test_fields_merge_into_the_stored_snapshot_and_a_null_clears_one(sessions) -> None:
    async with transaction(sessions) as session:
        await accept_one(session, Kind.owner, {"userId": "u1", "name": "Ann"}, [], "GB")
    async with transaction(sessions) as session:
        await accept_one(session, Kind.owner, {"userId": "u1", "phone": "07700 900123"}, [], "GB")
    async with transaction(sessions) as session:
        stored, _ = await accept_one(session, Kind.owner, {"userId": "u1", "name": None}, [], "GB")
    assert stored.changed
    assert (await records(sessions))["u1"] == {"userId": "u1", "phone": "+447700900123"}


async def test_the_same_content_again_changes_nothing(sessions) -> None:
    fields = {"userId": "u1", "name": "Ann"}
    async with transaction(sessions) as session:
        first, _ = await accept_one(session, Kind.owner, fields, [], "GB")
    async with transaction(sessions) as session:
        again, _ = await accept_one(session, Kind.owner, fields, [], "GB")
    assert first.changed and not again.changed
    assert first.id == again.id and first.content_hash == again.content_hash


async def test_only_an_id_for_a_record_never_sent_is_404_and_a_bad_field_422(sessions) -> None:
    async with transaction(sessions) as session:
        with pytest.raises(NotFound):
            await accept_one(session, Kind.owner, {"userId": "nobody"}, PROVIDERS, "GB")
        with pytest.raises(InvalidInput) as bad:
            await accept_one(session, Kind.owner, {"userId": "u", "phone": "no"}, PROVIDERS, "GB")
    assert bad.value.extra["field"] == "phone"
    assert await records(sessions) == {} and await jobs(sessions) == []


async def test_a_batch_rejects_records_one_by_one_and_keeps_the_rest(sessions) -> None:
    items = [
        {"userId": "u1", "name": "Ann"},
        {"userId": "u2", "phone": "not a phone"},
        {"userId": "u3"},  # only the id, never sent
        {"userId": "u1", "email": "ann@x.co"},  # the same record again, later in the batch
        "not an object",
    ]
    checked = [validate(Kind.owner, n, item) for n, item in enumerate(items)]
    valid = [(n, c) for n, c in enumerate(checked) if isinstance(c, dict)]
    async with transaction(sessions) as session:
        result = await accept(session, Kind.owner, valid, ["mock"], "GB")
    assert sorted(result.stored) == [0, 3]
    assert result.stored[0].id == result.stored[3].id
    assert [(r.index, r.field, r.status_code) for r in result.rejections] == [
        (1, "phone", 422),
        (2, "userId", 404),
    ]
    assert not isinstance(checked[4], dict) and checked[4].field == "body"
    assert await records(sessions) == {"u1": {"userId": "u1", "name": "Ann", "email": "ann@x.co"}}
    assert result.queued == 1


async def test_concurrent_first_accepts_of_one_record_coalesce(db_url: str) -> None:
    """Each accept in its own connection and transaction, all at once: none fails on the
    unique key, one record, every field merged, one job."""
    # PostgreSQL: sixteen connections, really at once. SQLite queues writers by design.
    engine = make_engine(db_url, pool_size=16) if "postgresql" in db_url else make_engine(db_url)
    sessions = make_sessionmaker(engine)

    async def one(n: int) -> None:
        async with transaction(sessions) as session:
            await accept_one(session, Kind.owner, {"userId": "u1", f"f{n}": n}, ["mock"], "GB")

    try:
        await asyncio.gather(*(one(n) for n in range(12)))
        async with sessions() as session:
            count = await session.scalar(select(func.count()).select_from(Record))
            [data] = list(await session.scalars(select(Record.data)))
            [status] = list(await session.scalars(select(SyncJob.status)))
    finally:
        await engine.dispose()
    assert count == 1
    assert data == {"userId": "u1", **{f"f{n}": n for n in range(12)}}
    assert status == JobStatus.queued
