"""CRMs that echo our credentials back: no configured secret reaches the sync log, the jobs,
the links, the log lines or the answers, whichever way it comes back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import text

from app.db import Base
from app.main import create_app
from app.redaction import RedactingFormatter
from app.settings import HubSpotSettings, TreadSoftSettings
from tests.conftest import SYNC_KEY, make_settings
from tests.eventually import eventually

TS_KEY = "ts-key-1f2e3d4c5b6a"
TS_SECRET = "ts-secret-9a8b7c6d5e4f"
HS_TOKEN = "pat-na1-0a1b2c3d-4e5f-6789"
SECRETS = (TS_KEY, TS_SECRET, HS_TOKEN)


def echo(request: httpx.Request) -> httpx.Response:
    """What a careless CRM does: its error repeats the request's credentials."""
    headers = {k: v for k, v in request.headers.items()}
    body = json.loads(request.content or b"{}")
    status = 400 if "reject" in json.dumps(body) else 500
    message = f"bad request with {headers.get('authorization')} {headers.get('x-api-secret', '')}"
    return httpx.Response(status, json={"message": message, "echo": headers})


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[Any]:
    settings = make_settings(
        db_url,
        crm_providers="treadsoft,hubspot",
        sync_wait_seconds=1.0,
        treadsoft=TreadSoftSettings(
            _env_file=None,  # type: ignore[call-arg]
            url="https://treadsoft.example",
            key=TS_KEY,
            secret=TS_SECRET,
        ),
        hubspot=HubSpotSettings(
            _env_file=None,  # type: ignore[call-arg]
            access_token=HS_TOKEN,
            base_url="https://hubspot.example",
        ),
    )
    with respx.mock(assert_all_called=False) as mocked:
        mocked.route(host="treadsoft.example").mock(side_effect=echo)
        mocked.route(host="hubspot.example").mock(side_effect=echo)
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            yield application


async def everything_stored(application: Any) -> str:
    """Every row of every table, as text."""
    engine = application.state.services.engine
    dumped = []
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = await conn.execute(text(f"SELECT * FROM {table.name}"))
            dumped += [repr(tuple(row)) for row in rows]
    return "\n".join(dumped)


async def test_secrets_a_crm_echoes_are_stored_logged_and_answered_as_redacted(app) -> None:
    stream = io.StringIO()
    [handler] = [  # the service's own handler (pytest adds its capture handler beside it)
        h for h in logging.getLogger().handlers if isinstance(h.formatter, RedactingFormatter)
    ]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    headers = {"Authorization": f"Bearer {SYNC_KEY}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    ) as client:
        answers = [
            await client.post("/api/crm/sync/owner", json={"userId": "u1", "email": "a@b.co"}),
            await client.post(
                "/api/crm/sync/owner", json={"userId": "u2", "email": "r@b.co", "name": "reject"}
            ),
        ]

        async def failed_everywhere() -> list[httpx.Response]:
            statuses = [
                await client.get("/api/crm/sync/owner", params={"userId": u}) for u in ("u1", "u2")
            ]
            for status in statuses:
                providers = status.json()["providers"]
                assert all(p["lastError"] for p in providers.values()), providers
            return statuses

        statuses = await eventually(failed_everywhere)

    stored = await everything_stored(app)
    assert "bad request with" in stored  # the echo itself was kept, blanked
    said = [stored, stream.getvalue(), *(a.text for a in [*answers, *statuses])]
    for place in said:
        for secret in SECRETS:
            assert secret not in place
    assert "[redacted]" in stored and "[redacted]" in stream.getvalue()
