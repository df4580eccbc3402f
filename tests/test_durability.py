"""Nothing accepted is lost, and no record is delivered twice, across processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from app.db import make_engine, make_sessionmaker, transaction, utcnow
from app.models import LinkStatus, ProviderLink, Record, SyncLog
from app.records import SPECS, Kind, content_hash, normalise
from app.sync.outbox import enqueue
from tests.conftest import API_KEYS, SYNC_KEY
from tests.eventually import eventually

pytestmark = pytest.mark.slow


def env_for(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DELIVERY_", "MOCK_"))}
    env.update(
        DATABASE_URL=db_url,
        API_KEYS=API_KEYS,
        CRM_PROVIDERS="mock",
        CRM_ENABLED="true",
        APP_ENV="development",
        LOG_LEVEL="WARNING",
        **extra,
    )
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def crm_sync(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_ready(base: str, seconds: float = 30) -> None:
    async with httpx.AsyncClient(base_url=base) as client:

        async def ready() -> None:
            try:
                answer = await client.get("/readyz")
            except httpx.TransportError as exc:
                raise AssertionError(f"server at {base} not answering: {exc}") from None
            assert answer.status_code == 200, f"server at {base} not ready: {answer.text}"

        await eventually(ready, seconds=seconds, every=0.1)


async def synced_count(db_url: str) -> int:
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(ProviderLink)
            .join(Record)
            .where(
                ProviderLink.status == LinkStatus.synced.value,
                ProviderLink.confirmed_hash == Record.content_hash,
            )
        )
    await engine.dispose()
    return int(count or 0)


async def test_sigkill_after_accepting_500_loses_nothing(db_url, processes, free_port) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # A slow CRM, small batches and a short lease: the kill lands mid-delivery.
    slow = env_for(
        db_url, MOCK_LATENCY_MS="100", DELIVERY_CLAIM_BATCH="10", DELIVERY_LEASE_SECONDS="2"
    )
    server = crm_sync(["serve", "--port", str(port)], slow)
    processes.append(server)
    await wait_ready(base)

    limits = asyncio.Semaphore(20)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {SYNC_KEY}", "Prefer": "respond-async"}
    ) as client:

        async def post(n: int) -> int:
            async with limits:
                body = {"userId": f"user_{n}", "name": f"Owner {n}", "email": f"o{n}@example.com"}
                return (await client.post("/api/crm/sync/owner", json=body)).status_code

        codes = await asyncio.gather(*(post(n) for n in range(500)))
    assert codes == [202] * 500

    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    before = await synced_count(db_url)
    assert before < 500, "the kill should land before delivery finished"

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes.append(
        crm_sync(["serve", "--port", str(port)], env_for(db_url, DELIVERY_LEASE_SECONDS="2"))
    )
    await wait_ready(base)

    async def all_synced() -> None:
        assert await synced_count(db_url) == 500

    await eventually(all_synced, seconds=60, every=0.2)
    print(f"\nkilled with {before}/500 synced; all 500 synced after the restart")
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {SYNC_KEY}"}
    ) as client:
        for n in (0, 250, 499):
            status = await client.get("/api/crm/sync/owner", params={"userId": f"user_{n}"})
            assert status.json()["syncStatus"] == "synced"


async def seed_owners(db_url: str, count: int) -> None:
    """Records and their jobs, set-based, as a bulk import would leave them."""
    spec = SPECS[Kind.owner]
    now = utcnow()
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        data = normalise(spec, {"userId": f"user_{n}", "email": f"O{n}@Example.com"}, "GB")
        rows.append(
            {
                "kind": "owner",
                "external_id": f"user_{n}",
                "data": data,
                "content_hash": content_hash(data),
                "created_at": now,
                "updated_at": now,
            }
        )
    async with transaction(sessions) as session:
        await session.execute(insert(Record), rows)
        queued = await enqueue(session, select(Record.id), ["mock"])
    await engine.dispose()
    assert queued == count


async def test_three_workers_drain_5000_jobs_without_double_work(db_url, processes) -> None:
    # PostgreSQL is where several workers are deployed; SQLite must stay correct with them too.
    await seed_owners(db_url, 5000)
    env = env_for(db_url, DELIVERY_CLAIM_BATCH="100", MOCK_LATENCY_MS="5")
    started = time.monotonic()
    workers = [crm_sync(["worker", "--drain"], env) for _ in range(3)]
    processes.extend(workers)
    for worker in workers:
        assert worker.wait(timeout=180) == 0, worker.stderr.read().decode() if worker.stderr else ""
    elapsed = time.monotonic() - started

    engine = make_engine(db_url)
    async with engine.connect() as conn:
        success = await conn.scalar(
            select(func.count()).select_from(SyncLog).where(SyncLog.status == "success")
        )
        distinct = await conn.scalar(
            select(func.count(func.distinct(SyncLog.entity_id))).where(SyncLog.status == "success")
        )
    await engine.dispose()
    assert success == 5000, "every record delivered, none twice"
    assert distinct == 5000
    assert await synced_count(db_url) == 5000
    backend = db_url.split("+", 1)[0]
    print(f"\n{backend}: 3 workers drained 5000 jobs in {elapsed:.1f}s ({5000 / elapsed:.0f}/s)")
