"""GET /api/crm/sync/activity and GET /api/crm/sync/failures (ops): the figures the dashboard's
overview and failures pages show, for scripts too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import OpsAuth, ServicesDep
from app.ops.activity import Activity, delivery_activity
from app.ops.failures import SHOWN, Failures, find_failures
from app.routers.answers import AUTHED, COMMON
from app.routers.body import JsonBodyRoute

router = APIRouter(
    prefix="/api/crm/sync",
    tags=["logs"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


@router.get(
    "/activity",
    response_model=Activity,
    summary="Per provider: deliveries per minute over the last hour, outcomes of the last 24 h",
)
async def activity(services: ServicesDep) -> Activity:
    async with services.sessions() as session:
        return await delivery_activity(session, services.settings.providers)


@router.get(
    "/failures",
    response_model=Failures,
    summary="Failed and dead jobs grouped by provider and reason, and the newest of them",
    description="Retry a group with POST /api/crm/sync/retry and its provider, status and "
    "reason (the group's `reason` as `reason`).",
)
async def failures(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=SHOWN)] = 50
) -> Failures:
    async with services.sessions() as session:
        return await find_failures(session, limit=limit)
