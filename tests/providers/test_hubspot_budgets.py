"""Every HubSpot budget through the one client: the ten-secondly window spaced from answers, the
search endpoints' own per-second budget, and the daily one (HubSpot's usage-details page)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import respx

from app.providers.base import ProviderError
from app.providers.hubspot.client import HubSpotClient, is_search
from app.providers.ratelimit import LocalRateLimiter
from app.settings import HubSpotSettings
from tests.providers.conftest import HUBSPOT, TOKEN

SEARCH = f"{HUBSPOT}/crm/v3/objects/contacts/search"
READ = f"{HUBSPOT}/crm/v3/objects/contacts/batch/read"


def client(limit: int = 100, search_limit: int = 5) -> HubSpotClient:
    settings = HubSpotSettings(  # type: ignore[call-arg]
        _env_file=None, access_token=TOKEN, search_rate_limit=search_limit, search_rate_margin=0
    )
    return HubSpotClient(settings, LocalRateLimiter("hubspot", limit, window=10, margin=0))


def too_many(policy: str, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = {"status": "error", "message": "limit", "errorType": "RATE_LIMIT", "policyName": policy}
    return httpx.Response(429, json=body, headers=headers)


def test_search_paths_are_told_apart() -> None:
    assert is_search("/crm/v3/objects/contacts/search")
    assert is_search("/crm/v3/objects/0-420/search/")
    assert not is_search("/crm/v3/objects/contacts/batch/read")


async def test_a_grant_counts_from_its_answer_not_from_when_it_was_sent() -> None:
    limiter = LocalRateLimiter("t", 1, window=0.3, margin=0)
    first = await limiter.reserve()
    sent = time.monotonic()
    await asyncio.sleep(0.2)  # a slow answer: HubSpot counted it at some point
    await limiter.settle(first)

    await limiter.acquire()

    assert time.monotonic() - sent >= 0.49


@respx.mock
async def test_searches_keep_to_their_own_per_second_budget() -> None:
    respx.post(SEARCH).mock(return_value=httpx.Response(200, json={"results": []}))
    respx.post(READ).mock(return_value=httpx.Response(200, json={"results": []}))
    hubspot = client(search_limit=2)
    try:
        began = time.monotonic()
        for _ in range(4):
            await hubspot.request("POST", "/crm/v3/objects/contacts/batch/read", json={})
        others = time.monotonic() - began
        began = time.monotonic()
        for _ in range(3):
            await hubspot.request("POST", "/crm/v3/objects/contacts/search", json={})
        searches = time.monotonic() - began
    finally:
        await hubspot.aclose()

    assert others < 0.5  # four calls well within 100 per 10 s
    assert searches >= 0.95  # the third search waits for the first to leave its second
    assert hubspot.search_limiter.granted == 3 and hubspot.limiter.granted == 7


@respx.mock
async def test_a_secondly_429_holds_the_searches_only() -> None:
    respx.post(SEARCH).mock(return_value=too_many("SECONDLY", "2"))
    hubspot = client()
    try:
        with pytest.raises(ProviderError) as raised:
            await hubspot.request("POST", "/crm/v3/objects/contacts/search", json={})
        error = raised.value
    finally:
        await hubspot.aclose()

    assert error.retry_after == 2.0
    assert "SECONDLY" in str(error)
    search, rolling = hubspot.search_limiter, hubspot.limiter
    assert isinstance(search, LocalRateLimiter) and isinstance(rolling, LocalRateLimiter)
    assert search._hold_until > time.monotonic() + 1.5
    assert rolling._hold_until == 0.0


@respx.mock
async def test_the_daily_budget_spent_holds_every_call_until_the_reset() -> None:
    respx.post(READ).mock(
        return_value=httpx.Response(
            200, json={"results": []}, headers={"X-HubSpot-RateLimit-Daily-Remaining": "0"}
        )
    )
    hubspot = client()
    try:
        await hubspot.request("POST", "/crm/v3/objects/contacts/batch/read", json={})
    finally:
        await hubspot.aclose()

    search, rolling = hubspot.search_limiter, hubspot.limiter
    assert isinstance(search, LocalRateLimiter) and isinstance(rolling, LocalRateLimiter)
    assert rolling._hold_until > time.monotonic() + 1 and search._hold_until > time.monotonic() + 1


@respx.mock
async def test_a_daily_429_holds_both_budgets() -> None:
    respx.post(SEARCH).mock(return_value=too_many("DAILY"))
    hubspot = client()
    try:
        with pytest.raises(ProviderError) as raised:
            await hubspot.request("POST", "/crm/v3/objects/contacts/search", json={})
        error = raised.value
    finally:
        await hubspot.aclose()

    assert 0 < (error.retry_after or 0) <= 24 * 3600
    search, rolling = hubspot.search_limiter, hubspot.limiter
    assert isinstance(search, LocalRateLimiter) and isinstance(rolling, LocalRateLimiter)
    assert rolling._hold_until > time.monotonic() + 1 and search._hold_until > time.monotonic() + 1
