"""The accept path under load from a C load generator: `POST /api/crm/sync/owner` with
`Prefer: respond-async` against the real server, next to a bare FastAPI endpoint (the same
pydantic model, one asyncpg INSERT) in the same run, alternating rounds, as a ratio.

wrk (Debian's `wrk`; `make bench` installs it) drives both, so the client is not the
bottleneck; every request carries a distinct owner (a Lua script numbers them per thread)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from bench.common import SYNC_KEY, free_port, fresh_database, pg, say, server

SECONDS = int(os.environ.get("BENCH_ACCEPT_SECONDS", "15"))
CONNECTIONS = int(os.environ.get("BENCH_ACCEPT_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_ACCEPT_THREADS", "2"))
ROUNDS = int(os.environ.get("BENCH_ACCEPT_ROUNDS", "2"))

# Each wrk thread numbers its own owners: "<round tag>-<thread>-<n>", so no two requests of a
# run name the same owner (a first sync each time: the accept path's heaviest answer).
SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  tag = args[1]
  tid = wrk.thread:get("tid")
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.headers["Prefer"] = "respond-async"
function request()
  counter = counter + 1
  local id = tag .. "-" .. tid .. "-" .. counter
  local body = string.format(
    '{"userId":"%%s","name":"Owner %%s","email":"%%s@example.com","phone":"07700 9%%05d",' ..
    '"companyName":"Holiday Lets Ltd","membershipStatus":"active"}',
    id, counter, id, counter %% 100000)
  return wrk.format(nil, nil, nil, body)
end
"""


@dataclass(frozen=True, slots=True)
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    cpu_ms: float = 0.0  # the server process's CPU per request (user + system)

    def line(self, name: str) -> str:
        return (
            f"{name:<30} {self.rps:8,.0f} req/s   p50 {self.p50_ms:6.1f} ms   "
            f"p99 {self.p99_ms:6.1f} ms   server CPU {self.cpu_ms:.2f} ms/request   "
            f"({self.requests:,} requests, {self.non_2xx} non-2xx, {self.errors} socket errors)"
        )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse(output: str) -> Round:
    """wrk's summary (with --latency): requests/s, the 50% and 99% latencies, failures."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    found: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        found[pct] = _ms(value, unit)
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Round(
        rps=rps,
        p50_ms=found["50"],
        p99_ms=found["99"],
        requests=total,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def wrk(port: int, path: str, tag: str, seconds: int, script: Path, pid: int) -> Round:
    """One wrk round; with the server's own CPU per request, a figure other load on the
    machine hardly moves."""
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
        "--",
        tag,
    ]
    before = cpu_seconds(pid)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    spent = cpu_seconds(pid) - before
    found = parse(done.stdout)
    return replace(found, cpu_ms=spent * 1000 / max(found.requests, 1))


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench_accept needs wrk: `apt-get install wrk` (make bench does it)")


def main() -> None:
    require_wrk()
    say("== bench_accept: POST /api/crm/sync/owner (Prefer: respond-async) vs a bare INSERT ==")
    say(
        f"How: PostgreSQL; two uvicorn processes (one worker each, access log off), side by "
        f"side: crm-sync (WORKER_IN_PROCESS=false, so only the accept path runs) and a bare "
        f"FastAPI app validating the same body with the same pydantic model and doing one "
        f"asyncpg INSERT. Load: wrk -t{THREADS} -c{CONNECTIONS}, {SECONDS} s rounds, a new "
        f"owner per request, {ROUNDS} rounds each, alternating (accept, bare, ...), after a "
        f"3-s warm-up of each."
    )
    asyncio.run(fresh_database())
    accept_port, bare_port = free_port(), free_port()
    results: dict[str, list[Round]] = {"accept": [], "bare": []}
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "owners.lua"
        script.write_text(SCRIPT % {"key": SYNC_KEY})
        with (
            server("crm-sync", accept_port, WORKER_IN_PROCESS="false") as accepting,
            server("bare", bare_port) as bare,
        ):
            path = "/api/crm/sync/owner"
            wrk(accept_port, path, "warm", 3, script, accepting.pid)
            wrk(bare_port, "/bare", "warm", 3, script, bare.pid)
            for r in range(ROUNDS):
                results["accept"].append(
                    wrk(accept_port, path, f"r{r}", SECONDS, script, accepting.pid)
                )
                results["bare"].append(wrk(bare_port, "/bare", f"r{r}", SECONDS, script, bare.pid))
    jobs = asyncio.run(pg("SELECT count(*) AS n FROM sync_jobs"))[0]["n"]
    say(f"   the accept path queued {jobs:,} jobs in all")
    for r in range(ROUNDS):
        say("   " + results["accept"][r].line(f"round {r + 1} accept (crm-sync)"))
        say("   " + results["bare"][r].line(f"round {r + 1} bare INSERT"))
    accept_rps = sum(x.rps for x in results["accept"]) / ROUNDS
    bare_rps = sum(x.rps for x in results["bare"]) / ROUNDS
    ratios = [a.rps / b.rps for a, b in zip(results["accept"], results["bare"], strict=True)]
    worst_p99 = max(x.p99_ms for x in results["accept"])
    failures = sum(x.non_2xx + x.errors for x in results["accept"])
    cpu = sum(x.cpu_ms for x in results["accept"]) / sum(x.cpu_ms for x in results["bare"])
    say(
        f"-- server CPU per request: accept / bare = {cpu:.2f}x (its inverse, "
        f"{1 / cpu:.2f}, is the ratio a CPU-bound server reaches on a quiet machine)"
    )
    say(
        f"-- accept {accept_rps:,.0f} req/s vs bare {bare_rps:,.0f} req/s: ratio "
        f"{accept_rps / bare_rps:.2f} (per round {', '.join(f'{x:.2f}' for x in ratios)}); "
        f"accept p99 at most {worst_p99:.1f} ms; {failures} non-2xx or socket errors"
    )


if __name__ == "__main__":
    main()
