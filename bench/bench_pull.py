"""Pull 25,000 contacts from the fake HubSpot (past its 10,000-result search cap) under HubSpot's
documented search limit (5 searches a second, per account), then 50 edits.

The fake runs as its own process (`crm-sync fake-hubspot`, enforcing 5 searches a second with
HubSpot's SECONDLY 429 and 100 requests per 10 s); the pull runs here, on a fresh SQLite file (or
BENCH_DATABASE_URL). The floor is the searches made / 5 a second; the first pull must complete
(every contact, no failed run) within 10% of it. Environment: BENCH_CONTACTS (25000),
BENCH_RATE_LIMIT (100), BENCH_SEARCH_LIMIT (5)."""

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
from app.pull.models import PullRun
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


async def run(db_url: str, url: str, contacts: int, limit: int, search_limit: int) -> None:
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
            _env_file=None,
            access_token=TOKEN,
            base_url=url,
            rate_limit=limit,
            search_rate_limit=search_limit,
        )
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=db_url, pull=PullSettings(_env_file=None)
        )
        engine = make_engine(db_url)
        sessions = make_sessionmaker(engine)
        provider = HubSpotProvider(
            hubspot,
            make_rate_limiter(sessions, "hubspot", limit, margin=hubspot.rate_margin),
            search_limiter=make_rate_limiter(
                sessions,
                "hubspot-search",
                search_limit,
                window=1.0,
                margin=hubspot.search_rate_margin,
            ),
        )
        source = HubSpotContacts(provider.client, settings.pull.page_size)
        try:
            began = time.perf_counter()
            first = await pull(
                sessions, source, settings, strategy=Strategy.overwrite, trigger="cli"
            )
            first_s = time.perf_counter() - began
            stats = (await fake.get("/_fake/stats")).json()
            async with sessions() as session:
                run = await session.get(PullRun, first.run_id)
                status = run.status if run else "?"
            searches = int(stats["searches"])
            floor = searches / search_limit
            print(
                f"first pull: {first.result.created} of {contacts} contacts created in "
                f"{first_s:.1f} s ({first.result.created / first_s:.0f}/s), run {status}; "
                f"{searches} searches served, {stats['rateLimited']} 429s "
                f"({first.rate_limited} waited out), most searches in any second "
                f"{stats['maxSearchesInSecond']}"
            )
            print(
                f"  floor: {searches} searches / {search_limit} per second = {floor:.1f} s; "
                f"time / floor = {first_s / floor:.3f} (target <= 1.10)"
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
    limit = int(os.environ.get("BENCH_RATE_LIMIT", "100"))
    search_limit = int(os.environ.get("BENCH_SEARCH_LIMIT", "5"))
    db_url = os.environ.get("BENCH_DATABASE_URL")
    if db_url is None:
        folder = tempfile.mkdtemp(prefix="bench-pull-")
        db_url = f"sqlite+aiosqlite:///{Path(folder) / 'pull.db'}"
    upgrade(db_url)
    port = _free_port()
    crm_sync = Path(sys.executable).parent / "crm-sync"
    fake = subprocess.Popen(
        [
            str(crm_sync),
            "fake-hubspot",
            "--port",
            str(port),
            "--rate-limit",
            str(limit),
            "--search-limit",
            str(search_limit),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        print(
            f"database: {db_url.split('://')[0]}; {contacts} contacts; limits {limit} per 10 s, "
            f"{search_limit} searches per second"
        )
        asyncio.run(run(db_url, f"http://127.0.0.1:{port}", contacts, limit, search_limit))
    finally:
        fake.terminate()
        fake.wait()
