"""Worker heartbeats: a process delivering the outbox is seen by others while it runs, and
not after it stops or falls silent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from app.db import transaction, utcnow
from app.sync.heartbeat import FORGET_AFTER, LIVE_SECONDS, Heartbeat, WorkerHeartbeat, live_workers
from tests.eventually import eventually


def row(row_id: str, seconds_ago: float) -> WorkerHeartbeat:
    at = utcnow() - timedelta(seconds=seconds_ago)
    return WorkerHeartbeat(
        id=row_id, host="gone", pid=1, role="worker", providers=["mock"], started_at=at, beat_at=at
    )


async def test_a_running_worker_is_seen_until_it_stops(sessions) -> None:
    providers = ["mock", "hubspot"]
    heartbeat = Heartbeat(sessions, role="worker", providers=providers, poll_interval=0.02)
    stop = asyncio.Event()
    running = asyncio.create_task(heartbeat.run(stop))

    async def seen() -> list[WorkerHeartbeat]:
        async with sessions() as session:
            found = await live_workers(session)
        assert len(found) == 1
        return found

    [worker] = await eventually(seen)
    assert (worker.role, worker.providers) == ("worker", ["mock", "hubspot"])
    assert worker.describe().startswith("worker pid ")
    first_beat = worker.beat_at

    async def beats_again() -> None:
        [again] = await seen()
        assert again.beat_at > first_beat

    await eventually(beats_again)
    stop.set()
    await running
    async with sessions() as session:
        assert await live_workers(session) == []
        assert (await session.scalars(select(WorkerHeartbeat))).all() == []


async def test_a_silent_worker_is_not_live_and_long_dead_ones_are_cleared(sessions) -> None:
    async with transaction(sessions) as session:
        session.add(row("silent", LIVE_SECONDS + 1))
        session.add(row("long-dead", FORGET_AFTER.total_seconds() + 60))
    async with sessions() as session:
        assert await live_workers(session) == []

    await Heartbeat(sessions, role="serve", providers=["mock"]).run_once()

    async with sessions() as session:
        kept = {r.id: r.role for r in (await session.scalars(select(WorkerHeartbeat))).all()}
        assert "silent" in kept and "long-dead" not in kept
        assert [w.role for w in await live_workers(session)] == ["serve"]
