"""Pull fixtures: a fake HubSpot served on a free port, and the app configured to pull from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.fakes.hubspot import FakeHubSpot, sign_v3
from app.main import create_app
from app.settings import HubSpotSettings, PullSettings, Settings
from tests.conftest import OPS_KEY, make_settings
from tests.e2e.conftest import HUBSPOT_TOKEN, serve

APP_SECRET = "hubspot-app-secret-7c1d2e3f"


@pytest.fixture
async def fake(free_port: Any) -> AsyncIterator[tuple[FakeHubSpot, str]]:
    hubspot = FakeHubSpot(rate_limit=10_000, token=HUBSPOT_TOKEN)
    async with serve(hubspot.asgi(), free_port()) as url:
        yield hubspot, url


def pull_settings(db_url: str, hubspot_url: str, **pull: Any) -> Settings:
    return make_settings(
        db_url,
        crm_providers="hubspot",
        hubspot=HubSpotSettings(
            _env_file=None,  # type: ignore[call-arg]
            access_token=HUBSPOT_TOKEN,
            base_url=hubspot_url,
            app_secret=APP_SECRET,
            rate_limit=10_000,
            rate_margin=0,
        ),
        pull=PullSettings(_env_file=None, **{"enabled": False, **pull}),  # type: ignore[call-arg]
    )


@pytest.fixture
async def pulling(db_url: str, fake: tuple[FakeHubSpot, str]) -> AsyncIterator[Any]:
    """(app, ops client, fake HubSpot): the service pulling from the fake."""
    hubspot, url = fake
    application = create_app(pull_settings(db_url, url))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://test",
            headers={"Authorization": f"Bearer {OPS_KEY}"},
            timeout=120,
        ) as client,
    ):
        yield application, client, hubspot


def signed(body: bytes, uri: str, timestamp: str, secret: str = APP_SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": sign_v3(secret, "POST", uri, body, timestamp),
    }
