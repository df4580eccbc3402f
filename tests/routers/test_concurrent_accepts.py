"""The website double-submits (issue 11): 200 new owners, each posted 4 times at once over many
connections to a real server. Concurrent first submits of one record coalesce: every answer is
2xx, and each owner is stored once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import func, select

from app.main import create_app
from app.models import Record
from tests.conftest import SYNC_KEY
from tests.e2e.conftest import serve

OWNERS = 200
REPEATS = 4
CONNECTIONS = 32


async def test_concurrent_first_submits_of_the_same_records_never_fail(
    settings: Any, free_port: Any
) -> None:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        serve(app, free_port()) as url,
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {SYNC_KEY}", "Prefer": "respond-async"},
            limits=httpx.Limits(max_connections=CONNECTIONS),
            timeout=120,
        ) as client,
    ):
        gate = asyncio.Semaphore(CONNECTIONS)

        async def submit(n: int, repeat: int) -> int:
            body = {"userId": f"signup_{n}", "name": f"Owner {n}", "phone": f"07700 9{n:05d}"}
            if repeat % 2:  # a resubmit may differ a little: it merges onto the first
                body["companyName"] = f"Lets {n}"
            async with gate:
                response = await client.post("/api/crm/sync/owner", json=body)
            return response.status_code

        codes = await asyncio.gather(*(submit(n, r) for r in range(REPEATS) for n in range(OWNERS)))
        sessions = app.state.services.sessions
        async with sessions() as session:
            stored = await session.scalar(
                select(func.count()).select_from(Record).where(Record.kind == "owner")
            )
            merged = await session.scalar(
                select(func.count())
                .select_from(Record)
                .where(Record.kind == "owner", Record.data["companyName"].as_string().is_not(None))
            )
    assert Counter(c for c in codes if c >= 300) == Counter()
    assert stored == OWNERS
    assert merged == OWNERS  # every resubmit's field landed on the one record
