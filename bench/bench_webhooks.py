"""Stripe webhook answer time under load: signed deliveries stored and answered by a running
server (`crm-sync serve` on a free port, in its own process), processing excluded.

The server runs with WORKER_IN_PROCESS=false, so what is timed is what Stripe waits for: the
signature check, one INSERT ... ON CONFLICT DO NOTHING and the 200. N deliveries (distinct
events, a real invoice.paid body of ~5 kB each) go out from C concurrent connections (httpx
AsyncClient); each is timed from send to answer. SQLite always; PostgreSQL too when it answers
at BENCH_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).

    python -m bench webhooks          # or `make bench` for every benchmark
    BENCH_WEBHOOK_N=2000 BENCH_WEBHOOK_CONCURRENCY=1,10,50 python -m bench webhooks
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests" / "webhooks" / "fixtures" / "stripe" / "evt_dev1_03.invoice.paid.json"
SECRET = "whsec_bench_0123456789"
N = int(os.environ.get("BENCH_WEBHOOK_N", "1000"))
BACKENDS = os.environ.get("BENCH_WEBHOOK_BACKENDS", "sqlite,postgresql").split(",")
LEVELS = [int(c) for c in os.environ.get("BENCH_WEBHOOK_CONCURRENCY", "1,10,50").split(",")]
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "crm_sync_bench_webhooks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed(body: bytes) -> str:
    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def deliveries(prefix: str, n: int) -> list[tuple[bytes, str]]:
    """n distinct events, signed beforehand so the client's own work stays out of the timing."""
    event = json.loads(TEMPLATE.read_bytes())
    out = []
    for i in range(n):
        event["id"] = f"evt_bench_{prefix}_{i}"
        body = json.dumps(event).encode()
        out.append((body, signed(body)))
    return out


@contextlib.contextmanager
def server(database_url: str) -> Iterator[tuple[str, psutil.Process]]:
    """`crm-sync serve` in its own process, answering webhooks only (no processing)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "WORKER_IN_PROCESS": "false",
        "CRM_PROVIDERS": "mock",
        "API_KEYS": "",
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-c", "from app.cli.main import main; main()", "serve"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"server exited: {error[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come up in 30 s")
            time.sleep(0.1)
        yield base, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


async def load(base: str, batch: list[tuple[bytes, str]], concurrency: int) -> list[float]:
    """Send every delivery from `concurrency` connections; seconds per answer."""
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for item in batch:
        queue.put_nowait(item)
    times: list[float] = []
    failures: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def sender() -> None:
            while not queue.empty():
                body, signature = queue.get_nowait()
                headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
                started = time.perf_counter()
                try:
                    answer = await client.post(
                        "/api/webhooks/stripe", content=body, headers=headers
                    )
                except httpx.TransportError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                times.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    if failures:
        raise RuntimeError(f"{len(failures)} deliveries not answered 200: {failures[0]}")
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def stored(base: str) -> int:
    async with httpx.AsyncClient(base_url=base) as client:
        counts = (await client.get("/api/webhooks/events", params={"limit": 1})).json()["counts"]
    return int(sum(counts.values()))


async def run_backend(name: str, database_url: str) -> list[dict[str, float | int | str]]:
    rows: list[dict[str, float | int | str]] = []
    with server(database_url) as (base, process):
        await load(base, deliveries(f"{name}_warm", 50), 5)  # connections, caches, JIT of pools
        sent = 50
        for concurrency in LEVELS:
            batch = deliveries(f"{name}_{concurrency}", N)
            cpu_before = sum(process.cpu_times()[:2])
            started = time.perf_counter()
            times = await load(base, batch, concurrency)
            wall = time.perf_counter() - started
            cpu = sum(process.cpu_times()[:2]) - cpu_before
            sent += len(batch)
            rows.append(
                {
                    "backend": name,
                    "concurrency": concurrency,
                    "deliveries": len(times),
                    "p50_ms": statistics.median(times) * 1000,
                    "p99_ms": percentile(times, 99) * 1000,
                    "max_ms": max(times) * 1000,
                    "per_s": len(times) / wall,
                    "cpu_ms": cpu * 1000 / len(times),  # the server's own CPU per delivery
                }
            )
        kept = await stored(base)
        if kept != sent:
            raise RuntimeError(f"{name}: {sent} deliveries answered 200 but {kept} stored")
    return rows


@contextlib.asynccontextmanager
async def postgres() -> AsyncIterator[str | None]:
    """A scratch database, or None when PostgreSQL is not there."""
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except Exception:
        yield None
        return
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{PG_DB}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.close()


async def run() -> list[dict[str, float | int | str]]:
    from app.migrate import upgrade

    rows = []
    if "sqlite" in BACKENDS:
        with tempfile.TemporaryDirectory() as tmp:
            rows += await run_backend("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db")
    if "postgresql" not in BACKENDS:
        return rows
    async with postgres() as url:
        if url is None:
            print("PostgreSQL not reachable: skipped (set BENCH_PG_ADMIN_URL)")
        else:
            await asyncio.to_thread(upgrade, url)
            rows += await run_backend("postgresql", url)
    return rows


def main() -> None:
    print(f"Stripe webhook answer time: {N} signed deliveries per level, stored and answered")
    print("(server in its own process, WORKER_IN_PROCESS=false: processing excluded;")
    print(" cpu ms: the server process's own CPU time per delivery, whatever else runs)")
    rows = asyncio.run(run())
    load = os.getloadavg()
    print(f"(client and server on this machine: {os.cpu_count()} CPUs, load {load[0]:.1f})")
    heads = ("conc", "n", "p50 ms", "p99 ms", "max ms", "req/s", "cpu ms")
    print(f"{'backend':<11} " + " ".join(f"{h:>8}" for h in heads))
    for r in rows:
        print(
            f"{r['backend']:<11} {r['concurrency']:>8} {r['deliveries']:>8} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['per_s']:>8.0f} {r['cpu_ms']:>8.2f}"
        )


if __name__ == "__main__":
    main()
