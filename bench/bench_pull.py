"""Pull 25,000 contacts from the fake HubSpot (past its 10,000-result search cap), then 50 edits.

The fake runs as its own process (`crm-sync fake-hubspot`, limit raised so the clock measures
this service, not HubSpot's 100 requests per 10 s: at that limit 126 searches alone take about
13 s); the pull runs here, on a fresh SQLite file (or BENCH_DATABASE_URL). Environment:
BENCH_CONTACTS (25000), BENCH_RATE_LIMIT (10000)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from app.db import make_engine, make_sessionmaker
from app.migrate import upgrade
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import make_rate_limiter
from app.pull.hubspot import HubSpotContacts
from app.pull.merge import Strategy
from app.pull.service import pull
from app.settings import HubSpotSettings, PullSettings, Settings

TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_up(client: httpx.AsyncClient) -> None:
    for _ in range(200):
        try:
            await client.get("/_fake/stats")
            return
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise RuntimeError("fake HubSpot did not start")


async def run(db_url: str, url: str, contacts: int, limit: int) -> None:
    start = datetime.now(UTC) - timedelta(days=31)
    step = timedelta(days=30).total_seconds() / contacts
    async with httpx.AsyncClient(base_url=url, timeout=120) as fake:
        await _wait_up(fake)
        seeded = await fake.post(
            "/_fake/contacts",
            json={
                "contacts": [
                    {
                        "email": f"guest{n}@bench.example",
                        "firstname": f"Guest{n}",
                        "phone": f"+4420{n:08d}",
                    }
                    for n in range(contacts)
                ],
                "start": start.isoformat(),
                "stepSeconds": step,
            },
        )
        ids = seeded.json()["ids"]
        hubspot = HubSpotSettings(  # type: ignore[call-arg]
            _env_file=None, access_token=TOKEN, base_url=url, rate_limit=limit, rate_margin=0
        )
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=db_url, pull=PullSettings(_env_file=None)
        )
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        provider = HubSpotProvider(hubspot, make_rate_limiter(sessions, "hubspot", limit))
        source = HubSpotContacts(provider)
        try:
            began = time.perf_counter()
            first = await pull(
                sessions, source, settings, strategy=Strategy.overwrite, trigger="cli"
            )
            first_s = time.perf_counter() - began
            print(
                f"first pull: {first.result.created} contacts created in {first_s:.1f} s "
                f"({first.result.created / first_s:.0f}/s), {first.requests} searches"
            )
            for n, contact_id in enumerate(ids[:: max(contacts // 50, 1)][:50]):
                await fake.patch(
                    f"/_fake/contacts/{contact_id}", json={"properties": {"company": f"E{n}"}}
                )
            began = time.perf_counter()
            second = await pull(
                sessions, source, settings, strategy=Strategy.overwrite, trigger="cli"
            )
            print(
                f"after 50 edits: fetched {second.result.fetched}, updated "
                f"{second.result.updated}, {second.requests} search(es), "
                f"{time.perf_counter() - began:.2f} s"
            )
        finally:
            await provider.aclose()
            await engine.dispose()


def main() -> None:
    contacts = int(os.environ.get("BENCH_CONTACTS", "25000"))
    limit = int(os.environ.get("BENCH_RATE_LIMIT", "10000"))
    db_url = os.environ.get("BENCH_DATABASE_URL")
    if db_url is None:
        folder = tempfile.mkdtemp(prefix="bench-pull-")
        db_url = f"sqlite+aiosqlite:///{Path(folder) / 'pull.db'}"
    upgrade(db_url)
    port = _free_port()
    crm_sync = Path(sys.executable).parent / "crm-sync"
    fake = subprocess.Popen(
        [str(crm_sync), "fake-hubspot", "--port", str(port), "--rate-limit", str(limit)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        print(f"database: {db_url.split('://')[0]}; {contacts} contacts; limit {limit}/10 s")
        asyncio.run(run(db_url, f"http://127.0.0.1:{port}", contacts, limit))
    finally:
        fake.terminate()
        fake.wait()
