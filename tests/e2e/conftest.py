"""End to end: the worker against the fake CRMs, served by uvicorn on a free local port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from app.fakes.hubspot import FakeHubSpot
from app.fakes.treadsoft import FakeTreadSoft

HUBSPOT_TOKEN = "pat-eu1-e2e-secret-token-5f1b9c"
TREADSOFT_KEY = "ts-key-e2e-8d7c6b5a"
TREADSOFT_SECRET = "ts-secret-e2e-1a2b3c4d"


@asynccontextmanager
async def serve(app: ASGIApp, port: int) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await asyncio.wait_for(task, 10)


class Running:
    def __init__(self, fake: Any, url: str) -> None:
        self.fake, self.url = fake, url

    async def control(self, method: str, path: str, **kw: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url) as c:
            response = await c.request(method, f"/_fake{path}", **kw)
            response.raise_for_status()
            return response.json()


async def hubspot_setup(url: str) -> None:
    """What `crm-sync hubspot setup` does, against the fake at `url`."""
    from app.providers.hubspot.client import HubSpotClient
    from app.providers.hubspot.setup import run_setup
    from app.providers.ratelimit import LocalRateLimiter
    from app.settings import HubSpotSettings

    settings = HubSpotSettings(_env_file=None, access_token=HUBSPOT_TOKEN, base_url=url)  # type: ignore[call-arg]
    client = HubSpotClient(settings, LocalRateLimiter("e2e-setup", 10_000))
    try:
        report = await run_setup(client, settings)
    finally:
        await client.aclose()
    assert report.ok and report.created, report


@pytest.fixture
async def fake_hubspot(free_port) -> AsyncIterator[Running]:
    """The fake as strict as HubSpot, bare of crm-sync's properties until setup makes them."""
    fake = FakeHubSpot(rate_limit=100, token=HUBSPOT_TOKEN, seeded=False)
    async with serve(fake.asgi(), free_port()) as url:
        await hubspot_setup(url)
        fake.state.counter.reset()  # setup's calls are not the test's
        yield Running(fake, url)


@pytest.fixture
async def fake_treadsoft(free_port) -> AsyncIterator[Running]:
    fake = FakeTreadSoft(TREADSOFT_KEY, TREADSOFT_SECRET)
    async with serve(fake.asgi(), free_port()) as url:
        yield Running(fake, url)
