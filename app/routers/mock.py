"""Ops-only control of the mock provider's faults, for demos and tests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from app.deps import OpsAuth, ServicesDep
from app.errors import NotFound
from app.providers.mock import FaultMode, Faults, MockProvider
from app.routers.answers import AUTHED, BODY, COMMON, errors
from app.routers.body import JsonBodyRoute, example_body

router = APIRouter(
    prefix="/api/crm/mock",
    tags=["mock"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


class FaultsIn(BaseModel):
    mode: FaultMode | None = Field(None, description="transient, timeout, rate_limit or reject")
    rate: float = Field(1.0, ge=0, le=1, description="share of deliveries that fail")
    count: int | None = Field(
        None, ge=0, le=2**31 - 1, description="fail only the next N deliveries"
    )
    retryAfter: float = Field(1.0, ge=0, le=86_400, description="seconds, for rate_limit")


class FaultsView(BaseModel):
    mode: FaultMode | None
    rate: float
    count: int | None = Field(description="deliveries left to fail; null: every one, at `rate`")
    retryAfter: float


class MockState(BaseModel):
    faults: FaultsView
    calls: int = Field(description="deliveries the mock was called with")
    stored: int = Field(description="records it holds")


FaultsBody = Annotated[
    FaultsIn,
    Body(
        openapi_examples=example_body(
            a_third_fail_for_a_while={"mode": "transient", "rate": 0.3},
            the_next_5_are_rate_limited={"mode": "rate_limit", "count": 5, "retryAfter": 2},
        )
    ),
]


def _mock(services: ServicesDep) -> MockProvider:
    provider = services.providers.get("mock")
    if not isinstance(provider, MockProvider):
        raise NotFound("the mock provider is not configured (CRM_PROVIDERS)")
    return provider


def _view(mock: MockProvider) -> MockState:
    f = mock.faults
    return MockState(
        faults=FaultsView(mode=f.mode, rate=f.rate, count=f.count, retryAfter=f.retry_after),
        calls=mock.calls,
        stored=len(mock.store),
    )


NOT_CONFIGURED = errors(404)


@router.get(
    "",
    response_model=MockState,
    summary="The mock's faults, calls and records held",
    responses=NOT_CONFIGURED,
)
async def mock_state(services: ServicesDep) -> MockState:
    return _view(_mock(services))


@router.put(
    "/faults",
    response_model=MockState,
    summary="Make the mock misbehave",
    responses=NOT_CONFIGURED | BODY,
)
async def set_faults(body: FaultsBody, services: ServicesDep) -> MockState:
    mock = _mock(services)
    mock.faults = Faults(
        mode=body.mode, rate=body.rate, count=body.count, retry_after=body.retryAfter
    )
    return _view(mock)


@router.delete(
    "/faults", response_model=MockState, summary="Clear the mock's faults", responses=NOT_CONFIGURED
)
async def clear_faults(services: ServicesDep) -> MockState:
    mock = _mock(services)
    mock.faults = Faults()
    return _view(mock)
