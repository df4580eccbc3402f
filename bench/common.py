"""What the benchmarks share: a PostgreSQL database of their own, servers in subprocesses, a
peak-RSS sampler, and a small keep-alive HTTP/1.1 load generator."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "crm_sync_bench_" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
OPS_KEY = "bench-ops-key-0123456789"
SYNC_KEY = "bench-sync-key-0123456789"
MB = 1024 * 1024


def say(line: str = "") -> None:
    print(line, flush=True)


def database_url() -> str:
    host = PG_ADMIN.split("@", 1)[1].rsplit("/", 1)[0]
    user = PG_ADMIN.split("//", 1)[1].split("@", 1)[0]
    return f"postgresql+asyncpg://{user}@{host}/{PG_DB}"


async def fresh_database() -> str:
    """Drop and recreate the bench database, migrated to head (Alembic in a subprocess: it
    runs its own event loop)."""
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        await conn.close()
    url = database_url()
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"from app.migrate import upgrade; upgrade({url!r})", cwd=ROOT
    )
    if await migrate.wait():
        raise RuntimeError("migrating the bench database failed")
    return url


async def pg(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(database_url().replace("+asyncpg", ""))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(role: str, port: int, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m bench.server <role>` on a port, until it answers /healthz; stopped after."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "API_KEYS": f"bench:ops:{OPS_KEY},site:sync:{SYNC_KEY}",
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
        "CRM_PROVIDERS": "mock",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.server", role, str(port)], cwd=ROOT, env=environment
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bench server {role} exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bench server {role} did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RssSampler:
    """Peak resident memory of a process and its children, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.samples = 0
        self._family = [self.process]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _refresh_family(self) -> None:
        # Listing children scans every process on the machine: once a second, not per sample.
        self._family = [self.process, *self.process.children(recursive=True)]

    def now(self) -> int:
        total = 0
        for proc in self._family:
            with suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        refreshed = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - refreshed > 1.0:
                    self._refresh_family()
                    refreshed = time.monotonic()
                self.peak = max(self.peak, self.now())
                self.samples += 1
            except psutil.NoSuchProcess:
                return
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- load generation ---------------------------------------------------------------------------


@dataclass
class Load:
    """Latencies (seconds) of the requests of one run, and its wall time."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)


class Connection:
    """One keep-alive HTTP/1.1 connection: a client far lighter than the server it measures,
    so on a small machine the figures are the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def hammer(
    port: int,
    path: str,
    bodies: list[Any],
    *,
    concurrency: int,
    headers: dict[str, str],
) -> Load:
    """Send every body with `concurrency` connections in flight; time each request."""
    load = Load()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client() -> None:
        conn = await Connection.open(port)
        try:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                status, _ = await conn.request(
                    "POST", path, body, {"Content-Type": "application/json", **headers}
                )
                load.latencies.append(time.perf_counter() - started)
                load.statuses[status] = load.statuses.get(status, 0) + 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    load.wall = time.perf_counter() - started
    return load


async def post_json(port: int, path: str, body: Any, key: str) -> tuple[int, Any]:
    conn = await Connection.open(port)
    try:
        status, raw = await conn.request(
            "POST",
            path,
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
    finally:
        conn.close()
    return status, json.loads(raw)


async def get_json(port: int, path: str, key: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    )
    conn = Connection(reader, writer)
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length)
    conn.close()
    assert b" 200 " in status_line, status_line
    return json.loads(body)
