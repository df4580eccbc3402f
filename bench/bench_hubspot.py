"""HubSpot pushes. First with the limit out of the way (BENCH_OPEN_OWNERS, 20,000 owners, one
worker, PostgreSQL): the pipeline's own pace against HubSpot Pro's ceiling of 1,900 records/s
(190 requests per 10 s x 100 a batch), with the fake's own capacity measured alone, so the fake is
shown not to be the bottleneck. Then 10,000 owners at 100 requests per 10 s: batched (this
service) against the seed code's way (one create call per record, in sequence).

The ceiling: 100 inputs a batch x 10 requests a second = 1,000 records a second. The fake runs as
its own process (`crm-sync fake-hubspot`), the worker in this one, on a fresh SQLite file (or
BENCH_DATABASE_URL). Environment: BENCH_OWNERS (10000), BENCH_SEED_SECONDS (31.5: three
windows of 10 s plus the limiter's 0.5-s margin)."""

from __future__ import annotations

import asyncio
import os
import socket
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
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import make_rate_limiter
from app.records import SPECS, Kind, content_hash, normalise
from app.settings import DeliverySettings, HubSpotSettings
from app.sync.outbox import enqueue
from app.sync.worker import Worker

TOKEN = "bench-token"
LIMIT = 100
CEILING = 100 * LIMIT / 10  # records a second
OPEN_LIMIT = 1_000_000  # requests per 10 s: the limit out of the way
PRO_CEILING = 1_900  # records a second: HubSpot Pro's 190 requests per 10 s x 100 a batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(f"{url}/_fake/stats")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("fake HubSpot did not start")


async def _stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        stats: dict[str, Any] = (await client.get(f"{url}/_fake/stats")).json()
        return stats


async def _reset(url: str) -> None:
    async with httpx.AsyncClient() as client:
        await client.post(f"{url}/_fake/reset")


def _cpu_of(pid: int) -> float:
    try:
        import psutil
    except ImportError:
        return float("nan")
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _owner(n: int) -> dict[str, Any]:
    return {"userId": f"bench_{n}", "name": f"Owner {n}", "email": f"owner{n}@bench.example"}


async def batched(db_url: str, url: str, owners: int, limit: int = LIMIT) -> dict[str, Any]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    spec = SPECS[Kind.owner]
    now = utcnow()
    rows = []
    for n in range(owners):
        data = normalise(spec, _owner(n), "GB")
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
    settings = HubSpotSettings(  # type: ignore[call-arg]
        _env_file=None, access_token=TOKEN, base_url=url, rate_limit=limit
    )
    limiter = make_rate_limiter(sessions, "hubspot", limit, margin=settings.rate_margin)
    provider = HubSpotProvider(settings, limiter)
    worker = Worker(
        sessions,
        {"hubspot": provider},
        DeliverySettings(
            _env_file=None,
            poll_interval=0.05,
            claim_batch=int(os.environ.get("BENCH_CLAIM", "1000")),
        ),  # type: ignore[call-arg]
        concurrency=int(os.environ.get("BENCH_CONCURRENCY", "4")),
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    while await worker.run_once() or await worker.pending():
        pass
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    await provider.aclose()
    await engine.dispose()
    stats = await _stats(url)
    return {
        "elapsed": elapsed,
        "rate": owners / elapsed,
        "requests": stats["requests"],
        "max_in_window": stats["maxInWindow"],
        "429s": stats["rateLimited"],
        "stored": stats["objects"].get("contacts", 0),
        "limiter_wait": limiter.waited_seconds,
        "cpu": cpu,
    }


async def seed_way(url: str, owners: int, seconds: float) -> dict[str, Any]:
    """One POST /crm/v3/objects/contacts per owner, in sequence, under the same limit (the seed
    code had no limiter and no retry, so this is its best case: no 429s). Runs for `seconds`
    (whole rate windows, so the first window's burst does not flatter it) or all owners."""
    limiter = make_rate_limiter(None, "seed", LIMIT, margin=0.5)
    sent = 0
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:
        started = time.perf_counter()
        while sent < owners and time.perf_counter() - started < seconds:
            await limiter.acquire()
            if time.perf_counter() - started >= seconds:
                break
            data = _owner(sent)
            props = {"email": f"seed{sent}@bench.example", "firstname": data["name"]}
            response = await client.post("/crm/v3/objects/contacts", json={"properties": props})
            response.raise_for_status()
            sent += 1
        elapsed = time.perf_counter() - started
    return {"sent": sent, "elapsed": elapsed, "rate": sent / elapsed}


def _start_fake(port: int, limit: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "crm-sync"),
            "fake-hubspot",
            "--port",
            str(port),
            "--rate-limit",
            str(limit),
        ],
        stdout=subprocess.DEVNULL,
    )


async def fake_alone(url: str, seconds: float, clients: int = 4) -> dict[str, Any]:
    """What the fake absorbs with nothing else in the way: `clients` connections each sending
    100-contact batch upserts back to back for `seconds`. Returns contacts per second."""
    sent = 0
    stop_at = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal sent
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:
            n = 0
            while time.perf_counter() < stop_at:
                inputs = [
                    {
                        "idProperty": "email",
                        "id": f"alone{c}-{n}-{i}@bench.example",
                        "objectWriteTraceId": str(i),
                        "properties": {
                            "email": f"alone{c}-{n}-{i}@bench.example",
                            "firstname": "Owner",
                            "lastname": str(i),
                        },
                    }
                    for i in range(100)
                ]
                response = await http.post(
                    "/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs}
                )
                response.raise_for_status()
                sent += len(inputs)
                n += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return {"rate": sent / (time.perf_counter() - started), "clients": clients}


def open_limit() -> None:
    """The push with the limit out of the way (fake and limiter at OPEN_LIMIT), PostgreSQL."""
    from bench.common import fresh_database

    owners = int(os.environ.get("BENCH_OPEN_OWNERS", "20000"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    fake = _start_fake(port, OPEN_LIMIT)
    try:
        db_url = os.environ.get("BENCH_DATABASE_URL") or asyncio.run(fresh_database())
        asyncio.run(_wait_up(url))
        fake_before = _cpu_of(fake.pid)
        result = asyncio.run(batched(db_url, url, owners, OPEN_LIMIT))
        fake_cpu = _cpu_of(fake.pid) - fake_before
        load = os.getloadavg()[0]
        asyncio.run(_reset(url))
        alone = asyncio.run(fake_alone(url, 5.0))
    finally:
        fake.terminate()
        fake.wait(10)
    backend = "PostgreSQL" if "postgresql" in db_url else "SQLite"
    print(
        f"hubspot push, limit out of the way: {owners} owners in {result['elapsed']:.1f} s = "
        f"{result['rate']:.0f} records/s = {result['rate'] / PRO_CEILING:.0%} of HubSpot Pro's "
        f"{PRO_CEILING}/s (190 requests per 10 s x 100 a batch)"
    )
    print(
        f"  measured: wall clock from the worker's first claim to an empty queue, one worker "
        f"(concurrency {os.environ.get('BENCH_CONCURRENCY', '4')}, claims of "
        f"{os.environ.get('BENCH_CLAIM', '1000')}) on {backend}, fake HubSpot in its own process "
        f"limited to {OPEN_LIMIT} requests per 10 s, load average {load:.1f} on "
        f"{os.cpu_count()} cores; {result['requests']} requests, 429s {result['429s']}, contacts "
        f"stored {result['stored']}; the worker used {result['cpu']:.1f} CPU-s "
        f"({result['cpu'] * 1e6 / owners:.0f} CPU-us a record), the fake {fake_cpu:.1f} CPU-s "
        f"({fake_cpu / result['elapsed']:.0%} of one core over the run)"
    )
    print(
        f"  the fake alone ({alone['clients']} clients posting 100-contact batch upserts back to "
        f"back for 5 s): {alone['rate']:.0f} contacts/s, "
        f"{alone['rate'] / max(result['rate'], 1):.1f}x the push rate: not the bottleneck"
        if alone["rate"] > result["rate"]
        else f"  the fake alone: {alone['rate']:.0f} contacts/s: THE FAKE IS THE BOTTLENECK"
    )


def main() -> None:
    open_limit()
    owners = int(os.environ.get("BENCH_OWNERS", "10000"))
    seed_seconds = float(os.environ.get("BENCH_SEED_SECONDS", "31.5"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    fake = _start_fake(port, LIMIT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
            upgrade(db_url)
            asyncio.run(_wait_up(url))
            result = asyncio.run(batched(db_url, url, owners))
            asyncio.run(_reset(url))
            seed = asyncio.run(seed_way(url, owners, seed_seconds))
        fake_cpu = _cpu_of(fake.pid)
    finally:
        fake.terminate()
        fake.wait(10)

    backend = "PostgreSQL" if "postgresql" in db_url else "SQLite"
    seed_total = owners / seed["rate"]
    print(
        f"hubspot batched: {owners} owners in {result['elapsed']:.1f} s = "
        f"{result['rate']:.0f} records/s = {result['rate'] / CEILING:.0%} of the "
        f"{CEILING:.0f}/s ceiling (100 per batch x {LIMIT} requests per 10 s)"
    )
    print(
        f"  measured: wall clock from the worker's first claim to an empty queue, one worker "
        f"(concurrency {os.environ.get('BENCH_CONCURRENCY', '4')}, claims of "
        f"{os.environ.get('BENCH_CLAIM', '1000')}) on {backend}, fake HubSpot in its own "
        f"process, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"{result['requests']} requests, most in any 10-s window {result['max_in_window']}, "
        f"429s {result['429s']}, contacts stored {result['stored']}, "
        f"limiter wait {result['limiter_wait']:.1f} s; this process used "
        f"{result['cpu']:.1f} CPU-s (the fake {fake_cpu:.1f} CPU-s for both runs)"
    )
    print(
        f"hubspot seed way: one POST /crm/v3/objects/contacts per owner, in sequence, under the "
        f"same limit: {seed['sent']} owners in {seed['elapsed']:.1f} s = {seed['rate']:.1f} "
        f"records/s (measured from the first call over whole 10.5-s limiter windows); "
        f"{owners} owners would take ~{seed_total:.0f} s"
    )
    print(
        f"hubspot batched / seed way: {result['rate'] / seed['rate']:.0f}x records/s "
        f"({seed_total / result['elapsed']:.0f}x less wall clock for {owners} owners)"
    )
