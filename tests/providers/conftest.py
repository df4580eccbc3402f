"""HubSpot and TreadSoft adapters against respx: every request they send, pinned."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.providers.base import Delivery
from app.providers.hubspot import spec as hubspot_spec
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import LocalRateLimiter
from app.records import Kind
from app.settings import HubSpotSettings

HUBSPOT = "https://api.hubapi.com"
TOKEN = "pat-na1-test-token-0123456789abcdef"


def delivery(kind: Kind, record_id: str, data: dict[str, Any], **kw: Any) -> Delivery:
    job_id = kw.pop("job_id", abs(hash((kind, record_id))) % 10_000)
    return Delivery(
        job_id=job_id,
        kind=kind,
        record_id=record_id,
        data=data,
        crm_id=kw.pop("crm_id", None),
        parent_crm_id=kw.pop("parent_crm_id", None),
        idempotency_key=kw.pop("idempotency_key", f"test-{job_id}"),
    )


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def hubspot_answer(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect that first checks the request body against HubSpot's spec."""

    def answer(request: httpx.Request) -> httpx.Response:
        problems = hubspot_spec.errors(request.method, request.url.path, body(request))
        assert problems == [], f"{request.method} {request.url.path}: {problems}"
        return httpx.Response(status, json=payload, headers=headers or {})

    return answer


@pytest.fixture
def hubspot_settings() -> HubSpotSettings:
    return HubSpotSettings(_env_file=None, access_token=TOKEN)  # type: ignore[call-arg]


@pytest.fixture
async def hubspot(hubspot_settings: HubSpotSettings) -> AsyncIterator[HubSpotProvider]:
    provider = HubSpotProvider(hubspot_settings, LocalRateLimiter("hubspot-test", 1000))
    yield provider
    await provider.aclose()
