"""Bulk resync at 10,000 and 100,000 owners on PostgreSQL with the mock provider: records per
second, peak RSS of the server process (API + in-process worker + bulk runner), and a second
bulk with nothing changed (no provider call, all skipped)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from bench.common import (
    MB,
    OPS_KEY,
    RssSampler,
    free_port,
    fresh_database,
    get_json,
    pg,
    post_json,
    say,
    server,
)

SIZES = [int(n) for n in os.environ.get("BENCH_BULK_SIZES", "10000,100000").split(",")]
RSS_BUDGET_MB = 50

SEED = """
INSERT INTO records (kind, external_id, data, content_hash, created_at, updated_at)
SELECT 'owner', 'u' || g, d, encode(sha256(convert_to(d::text, 'UTF8')), 'hex'), now(), now()
FROM (
    SELECT g, jsonb_build_object(
        'userId', 'u' || g, 'name', 'Owner ' || g, 'email', 'owner' || g || '@example.com',
        'phone', '+4477' || lpad(g::text, 8, '0'), 'companyName', 'Holiday Lets ' || g,
        'role', 'owner', 'membershipStatus', 'active', 'city', 'Bristol', 'country', 'GB'
    ) AS d
    FROM generate_series(1, $1::int) AS g
) AS rows
"""


async def one_size(n: int) -> dict[str, Any]:
    await fresh_database()
    started = time.perf_counter()
    await pg(SEED, n)
    await pg("ANALYZE")
    seeded = time.perf_counter() - started
    port = free_port()
    env = {"BULK_WAIT_SECONDS": "7200", "WORKER_IN_PROCESS": "true"}
    with server("crm-sync", port, **env) as proc:
        probe = RssSampler(proc.pid)
        await asyncio.sleep(1.0)  # settled after start-up
        idle = probe.now()
        with RssSampler(proc.pid) as first_rss:
            started = time.perf_counter()
            status, first = await post_json(
                port, "/api/crm/sync/bulk?wait=true", {"syncType": "owners"}, OPS_KEY
            )
            first_s = time.perf_counter() - started
        assert status == 200, (status, first)
        calls_before = (await get_json(port, "/api/crm/mock", OPS_KEY))["calls"]
        with RssSampler(proc.pid) as second_rss:
            started = time.perf_counter()
            status, second = await post_json(
                port, "/api/crm/sync/bulk?wait=true", {"syncType": "owners"}, OPS_KEY
            )
            second_s = time.perf_counter() - started
        assert status == 200, (status, second)
        calls_after = (await get_json(port, "/api/crm/mock", OPS_KEY))["calls"]
    return {
        "n": n,
        "seed_s": seeded,
        "idle_mb": idle / MB,
        "first_s": first_s,
        "first": first["results"]["owners"],
        "first_success": first["success"],
        "peak_mb": first_rss.peak / MB,
        "samples": first_rss.samples,
        "second_s": second_s,
        "second": second["results"]["owners"],
        "second_peak_mb": second_rss.peak / MB,
        "calls_first": calls_before,
        "calls_second": calls_after - calls_before,
    }


def main() -> None:
    say("== bench_bulk: bulk resync of owners, PostgreSQL, mock provider ==")
    say(
        "How: a fresh database per size; N owners seeded set-based (one INSERT ... SELECT "
        "generate_series); one server process (uvicorn: API + in-process worker + bulk runner, "
        "`python -m bench.server crm-sync`, the mock standing in for a remote CRM: it keeps no "
        "copy of what it receives); `POST /api/crm/sync/bulk?wait=true {syncType: owners}` timed "
        "from request to answer; RSS of that process (and any children) sampled every 20 ms "
        "with psutil while the bulk runs."
    )
    rows = []
    for n in SIZES:
        row = asyncio.run(one_size(n))
        rows.append(row)
        first, second = row["first"], row["second"]
        say(f"-- {n:,} owners (seeded in {row['seed_s']:.1f} s)")
        say(
            f"   first bulk : {row['first_s']:.1f} s = {n / row['first_s']:,.0f} records/s "
            f"(request to answer; every record delivered: created {first['created']:,}, "
            f"failed {first['failed']}, skipped {first['skipped']}; success {row['first_success']})"
        )
        say(
            f"   peak RSS   : {row['peak_mb']:.1f} MB during the bulk "
            f"(idle after start-up {row['idle_mb']:.1f} MB; {row['samples']} samples)"
        )
        say(
            f"   second bulk, nothing changed: {row['second_s']:.2f} s, skipped "
            f"{second['skipped']:,} of {second['total']:,}, provider calls "
            f"{row['calls_second']} (first bulk made {row['calls_first']:,}); "
            f"peak RSS {row['second_peak_mb']:.1f} MB"
        )
        assert first["created"] == n and first["failed"] == 0, first
        assert second["skipped"] == n and row["calls_second"] == 0, second
    if len(rows) >= 2:
        small, big = rows[0], rows[-1]
        growth = big["peak_mb"] - small["peak_mb"]
        verdict = "OK" if growth <= RSS_BUDGET_MB else "OVER BUDGET"
        say(
            f"-- peak RSS at {big['n']:,} minus at {small['n']:,}: {growth:+.1f} MB "
            f"(budget {RSS_BUDGET_MB} MB): {verdict}"
        )


if __name__ == "__main__":
    main()
