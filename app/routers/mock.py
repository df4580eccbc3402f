"""Ops-only control of the mock provider's faults, for demos and tests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.deps import OpsAuth, ServicesDep
from app.errors import NotFound
from app.providers.mock import FaultMode, Faults, MockProvider

router = APIRouter(prefix="/api/crm/mock", tags=["mock"], dependencies=[OpsAuth])
routers = [router]


class FaultsIn(BaseModel):
    mode: FaultMode | None = Field(None, description="transient, timeout, rate_limit or reject")
    rate: float = Field(1.0, ge=0, le=1, description="share of deliveries that fail")
    count: int | None = Field(None, ge=0, description="fail only the next N deliveries")
    retryAfter: float = Field(1.0, ge=0, description="seconds, for rate_limit")


def _mock(services: ServicesDep) -> MockProvider:
    provider = services.providers.get("mock")
    if not isinstance(provider, MockProvider):
        raise NotFound("the mock provider is not configured (CRM_PROVIDERS)")
    return provider


def _view(mock: MockProvider) -> dict[str, Any]:
    f = mock.faults
    return {
        "faults": {"mode": f.mode, "rate": f.rate, "count": f.count, "retryAfter": f.retry_after},
        "calls": mock.calls,
        "stored": len(mock.store),
    }


@router.get("")
async def mock_state(services: ServicesDep) -> dict[str, Any]:
    return _view(_mock(services))


@router.put("/faults")
async def set_faults(body: FaultsIn, services: ServicesDep) -> dict[str, Any]:
    mock = _mock(services)
    mock.faults = Faults(
        mode=body.mode, rate=body.rate, count=body.count, retry_after=body.retryAfter
    )
    return _view(mock)


@router.delete("/faults")
async def clear_faults(services: ServicesDep) -> dict[str, Any]:
    mock = _mock(services)
    mock.faults = Faults()
    return _view(mock)
