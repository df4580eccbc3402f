"""The accept path under concurrent load: `POST /api/crm/sync/owner` with `Prefer: respond-async`
against a real uvicorn server, next to a bare FastAPI endpoint doing one INSERT on the same
database in the same run, as a ratio."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench.common import (
    SYNC_KEY,
    Load,
    free_port,
    fresh_database,
    hammer,
    pg,
    say,
    server,
)

REQUESTS = int(os.environ.get("BENCH_ACCEPT_REQUESTS", "4000"))
CONCURRENCY = int(os.environ.get("BENCH_ACCEPT_CONCURRENCY", "32"))
ROUNDS = 2


def owner(i: int, tag: str) -> dict[str, Any]:
    return {
        "userId": f"{tag}{i}",
        "name": f"Owner {i}",
        "email": f"owner{i}.{tag}@example.com",
        "phone": f"07700 9{i % 100000:05d}",
        "companyName": "Holiday Lets Ltd",
        "membershipStatus": "active",
    }


async def run(role: str, path: str, n: int, tag: str, port: int) -> Load:
    bodies = [owner(i, tag) for i in range(n)]
    headers = {"Authorization": f"Bearer {SYNC_KEY}", "Prefer": "respond-async"}
    return await hammer(port, path, bodies, concurrency=CONCURRENCY, headers=headers)


def combined(loads: list[Load]) -> Load:
    """All rounds as one: requests over the sum of their wall times."""
    return Load(
        latencies=[x for load in loads for x in load.latencies],
        wall=sum(load.wall for load in loads),
    )


def line(name: str, load: Load) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(load.statuses.items()))
    return (
        f"{name:<34} {load.rps:8,.0f} req/s   p50 {load.p50 * 1000:6.1f} ms   "
        f"p99 {load.pct(99) * 1000:6.1f} ms   ({len(load.latencies):,} requests; {statuses})"
    )


async def measure() -> dict[str, list[Load]]:
    await fresh_database()
    accept_port, bare_port = free_port(), free_port()
    results: dict[str, list[Load]] = {"accept": [], "bare": []}
    # The accept server runs no worker: the figure is the accept path alone (validate,
    # normalise, store the snapshot, queue the job, commit), not delivery competing for CPU.
    with (
        server("crm-sync", accept_port, WORKER_IN_PROCESS="false"),
        server("bare", bare_port),
    ):
        await run("accept", "/api/crm/sync/owner", 200, "warm", accept_port)
        await run("bare", "/bare", 200, "warm", bare_port)
        for r in range(ROUNDS):  # interleaved, so a busy moment on the machine hits both
            results["accept"].append(
                await run("accept", "/api/crm/sync/owner", REQUESTS, f"r{r}u", accept_port)
            )
            results["bare"].append(await run("bare", "/bare", REQUESTS, f"r{r}b", bare_port))
    jobs = (await pg("SELECT count(*) AS n FROM sync_jobs"))[0]["n"]
    rows = (await pg("SELECT count(*) AS n FROM bench_bare"))[0]["n"]
    say(f"   written: {jobs:,} jobs queued by the accept path, {rows:,} bare rows")
    return results


def main() -> None:
    say("== bench_accept: POST /api/crm/sync/owner (Prefer: respond-async) vs a bare INSERT ==")
    say(
        f"How: PostgreSQL; two uvicorn processes (one worker each, access log off), started "
        f"side by side: crm-sync (`python -m bench.server crm-sync`, WORKER_IN_PROCESS=false, "
        f"so only the accept path runs) and a bare FastAPI app whose endpoint does one INSERT "
        f"... RETURNING on the same database with the same engine settings. Load: "
        f"{CONCURRENCY} keep-alive connections from a minimal asyncio HTTP/1.1 client, "
        f"{REQUESTS:,} distinct owners per round after 200 warm-up requests, {ROUNDS} rounds "
        f"interleaved (accept, bare, accept, bare); latency per request from send to full "
        f"response; req/s = requests / wall time of the round."
    )
    results = asyncio.run(measure())
    for r in range(ROUNDS):
        say("   " + line(f"round {r + 1} accept (crm-sync)", results["accept"][r]))
        say("   " + line(f"round {r + 1} bare INSERT", results["bare"][r]))
    ratios = [a.rps / b.rps for a, b in zip(results["accept"], results["bare"], strict=True)]
    accept, bare = combined(results["accept"]), combined(results["bare"])
    say(
        f"-- both rounds together: accept {accept.rps:,.0f} req/s (p50 {accept.p50 * 1000:.1f} ms, "
        f"p99 {accept.pct(99) * 1000:.1f} ms) vs bare INSERT {bare.rps:,.0f} req/s (p50 "
        f"{bare.p50 * 1000:.1f} ms, p99 {bare.pct(99) * 1000:.1f} ms): accept / bare = "
        f"{accept.rps / bare.rps:.2f}x throughput (per round "
        f"{', '.join(f'{r:.2f}x' for r in ratios)}), {accept.pct(99) / bare.pct(99):.2f}x p99"
    )
    for load in (*results["accept"], *results["bare"]):
        assert set(load.statuses) == {202}, load.statuses


if __name__ == "__main__":
    main()
