"""Limiter efficiency (issue 14 point 3): 10,000 owners to the fake HubSpot at 20 calls per
10 s. 100 batches of 100 at 20 a window cannot span less than 4 windows (40 s) from the first
call to the last as HubSpot counts them; efficiency = that floor / the span the fake saw.
Target >= 0.95 with zero 429s.

Measured twice: through the delivery worker (claims, maps, writes each batch's outcome), and the
HubSpot client alone (the same 100 batch upserts from 4 concurrent senders), which is the
limiter's own pacing without the worker's pauses between rounds.

The fake runs as its own process (`crm-sync fake-hubspot --rate-limit 20`); the worker runs
here on a fresh SQLite file (or BENCH_DATABASE_URL). Environment: BENCH_OWNERS (10000),
BENCH_LIMIT (20), BENCH_CONCURRENCY (4)."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from app.db import make_engine, make_sessionmaker, transaction, utcnow
from app.migrate import upgrade
from app.models import Record
from app.providers.hubspot.client import HubSpotClient
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import make_rate_limiter
from app.records import SPECS, Kind, content_hash, normalise
from app.settings import DeliverySettings, HubSpotSettings
from app.sync.outbox import enqueue
from app.sync.worker import Worker
from bench.common import free_port

TOKEN = "bench-token"
WINDOW = 10.0
BATCH = 100


async def _fake(url: str, method: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(200):
            try:
                answer: dict[str, Any] = (await client.request(method, f"/_fake{path}")).json()
                return answer
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("fake HubSpot did not answer")


async def _queue(db_url: str, owners: int) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    spec, now, rows = SPECS[Kind.owner], utcnow(), []
    for n in range(owners):
        data = normalise(
            spec, {"userId": f"lim_{n}", "name": f"Owner {n}", "email": f"l{n}@bench.example"}, "GB"
        )
        rows.append(
            {
                "kind": "owner",
                "external_id": data["userId"],
                "data": data,
                "content_hash": content_hash(data),
                "created_at": now,
                "updated_at": now,
            }
        )
    async with transaction(sessions) as session:
        await session.execute(insert(Record), rows)
        await enqueue(session, select(Record.id), ["hubspot"])
    await engine.dispose()


async def deliver(db_url: str, url: str, limit: int) -> dict[str, Any]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    settings = HubSpotSettings(  # type: ignore[call-arg]
        _env_file=None, access_token=TOKEN, base_url=url, rate_limit=limit
    )
    limiter = make_rate_limiter(sessions, "hubspot", limit, margin=settings.rate_margin)
    provider = HubSpotProvider(settings, limiter)
    worker = Worker(
        sessions,
        {"hubspot": provider},
        DeliverySettings(  # type: ignore[call-arg]
            _env_file=None,
            poll_interval=0.05,
            claim_batch=int(os.environ.get("BENCH_CLAIM", str(DeliverySettings().claim_batch))),
        ),
        concurrency=int(os.environ.get("BENCH_CONCURRENCY", "4")),
    )
    await _fake(url, "POST", "/reset")
    began = time.perf_counter()
    while await worker.run_once() or await worker.pending():
        pass
    elapsed = time.perf_counter() - began
    await provider.aclose()
    await engine.dispose()
    return {"elapsed": elapsed, "margin": settings.rate_margin} | await _fake(url, "GET", "/stats")


async def client_alone(url: str, limit: int, owners: int) -> dict[str, Any]:
    settings = HubSpotSettings(  # type: ignore[call-arg]
        _env_file=None, access_token=TOKEN, base_url=url, rate_limit=limit
    )
    client = HubSpotClient(
        settings, make_rate_limiter(None, "alone", limit, margin=settings.rate_margin)
    )
    senders = asyncio.Semaphore(int(os.environ.get("BENCH_CONCURRENCY", "4")))

    async def send(first: int) -> None:
        inputs = [
            {"id": f"a{n}@bench.example", "idProperty": "email", "properties": {"firstname": "A"}}
            for n in range(first, min(first + BATCH, owners))
        ]
        async with senders:
            await client.request(
                "POST", "/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs}
            )

    await _fake(url, "POST", "/reset")
    try:
        await asyncio.gather(*(send(first) for first in range(0, owners, BATCH)))
    finally:
        await client.aclose()
    return await _fake(url, "GET", "/stats")


def _line(what: str, floor: float, stats: dict[str, Any]) -> str:
    span = float(stats["span"])
    return (
        f"  {what}: the fake saw {span:.1f} s -> efficiency "
        f"{floor / span if span else float('nan'):.3f} (target >= 0.95); 429s "
        f"{stats['rateLimited']} (must be 0); requests {stats['requests']}, most in any 10-s "
        f"window {stats['maxInWindow']}"
    )


def main() -> None:
    owners = int(os.environ.get("BENCH_OWNERS", "10000"))
    limit = int(os.environ.get("BENCH_LIMIT", "20"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    crm_sync = Path(sys.executable).parent / "crm-sync"
    fake = subprocess.Popen(
        [str(crm_sync), "fake-hubspot", "--port", str(port), "--rate-limit", str(limit)],
        stdout=subprocess.DEVNULL,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/lim.db"
            upgrade(db_url)
            asyncio.run(_queue(db_url, owners))
            result = asyncio.run(deliver(db_url, url, limit))
            alone = asyncio.run(client_alone(url, limit, owners))
    finally:
        fake.terminate()
        fake.wait(10)
    calls = math.ceil(owners / BATCH)
    floor = (math.ceil(calls / limit) - 1) * WINDOW
    backend = "PostgreSQL" if "postgresql" in db_url else "SQLite"
    print(
        f"limiter efficiency: {owners} owners = {calls} calls at {limit} per {WINDOW:.0f} s: "
        f"floor {floor:.1f} s from the first call to the last (margin {result['margin']} s)"
    )
    worker = f"through the worker ({backend}, wall clock {result['elapsed']:.1f} s)"
    print(_line(worker, floor, result))
    print(_line("the HubSpot client alone", floor, alone))
