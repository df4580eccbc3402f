"""The overview says when a provider is held by its circuit breaker, as GET /api/crm/status
does."""

from __future__ import annotations

import pytest

from app.providers.mock import Faults
from app.settings import Settings
from tests.conftest import make_settings
from tests.eventually import eventually
from tests.ui.test_http import browser_like, sign_in


@pytest.fixture
def settings(db_url: str) -> Settings:
    """One failing call holds a provider, for a minute."""
    held = {"breaker_threshold": 1, "breaker_cooldown": 60, "breaker_cooldown_max": 60}
    return make_settings(db_url, delivery=held)


async def test_a_provider_held_by_its_breaker_shows_as_held(app, client, ops, mock) -> None:
    async with browser_like(app) as web:
        await sign_in(web)
        calm = await web.get("/ui/overview/live")
        assert 'data-figure="breaker" data-value="closed"' in calm.text

        mock.faults = Faults(mode="transient")
        body = {"userId": "u1", "name": "Ann"}
        await client.post("/api/crm/sync/owner", json=body, headers={"Prefer": "respond-async"})

        async def held() -> dict:
            breaker = (await ops.get("/api/crm/status")).json()["providers"]["mock"]["breaker"]
            assert breaker["state"] == "open"
            return breaker

        breaker = await eventually(held)
        page = await web.get("/ui/overview/live")
        assert 'data-figure="breaker" data-value="open"' in page.text
        assert "held (breaker open)" in page.text
        assert "Held after 1 failing call in a row" in page.text
        assert breaker["lastError"] and breaker["lastError"] in page.text
