"""POST and GET /api/crm/sync/bulk (ops): resync stored records in bulk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from app.deps import OpsAuth, ServicesDep
from app.ops.bulk import BulkRequest, BulkRuns, recent_runs, run_view, status_url
from app.ops.schemas import BulkRunList, BulkStarted, BulkView
from app.routers.answers import AUTHED, BODY, COMMON, errors
from app.routers.body import JsonBodyRoute, example_body
from app.routers.params import PathText

router = APIRouter(
    prefix="/api/crm/sync",
    tags=["bulk"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


async def get_bulk_runs(request: Request) -> BulkRuns:
    runs: BulkRuns = request.app.state.bulk_runs
    return runs


BulkRunsDep = Annotated[BulkRuns, Depends(get_bulk_runs)]
BulkBody = Annotated[
    BulkRequest,
    Body(
        openapi_examples=example_body(
            everything={"syncType": "all"},
            failed_owners_to_one_provider={
                "syncType": "owners",
                "onlyFailed": True,
                "provider": "hubspot",
            },
            force_properties={"syncType": "properties", "force": True},
        )
    ),
]


@router.post(
    "/bulk",
    status_code=202,
    response_model=BulkStarted | BulkView,
    summary="Resync stored records in bulk",
    responses={
        200: {"description": "with ?wait=true: the run finished", "model": BulkView},
        202: {
            "description": "the run started (or, with ?wait=true, is still going: its progress)",
            "model": BulkStarted | BulkView,
        },
        **BODY,
    },
)
async def start_bulk(
    body: BulkBody,
    request: Request,
    response: Response,
    services: ServicesDep,
    runs: BulkRunsDep,
    wait: Annotated[bool, Query(description="wait for the run to finish")] = False,
) -> BulkStarted | BulkView:
    """Queues every record of `syncType` (in chunks) for each provider; what a provider already
    confirmed is skipped unless `force`. 202 with `bulkId` and `statusUrl`; with `?wait=true`
    200 and the results once done, or 202 with the progress if BULK_WAIT_SECONDS pass first or
    only deliveries waiting for a parent nothing will sync are left (the message says so)."""
    run = await runs.start(
        services.settings, body, requested_by=getattr(request.state, "api_key", None)
    )
    if not wait:
        return BulkStarted(bulkId=run.id, statusUrl=status_url(run.id))
    await runs.wait(run.id, services.settings.bulk.wait_seconds)
    async with services.sessions() as session:
        view = await run_view(session, run.id)
    response.status_code = 202 if view.status in ("queued", "enqueueing", "delivering") else 200
    return view


@router.get("/bulk", response_model=BulkRunList, summary="The newest bulk runs, newest first")
async def bulk_runs(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> BulkRunList:
    async with services.sessions() as session:
        return BulkRunList(runs=await recent_runs(session, limit))


@router.get(
    "/bulk/{bulkId}",
    response_model=BulkView,
    summary="A bulk run's progress and results",
    responses=errors(404),
)
async def bulk_status(bulkId: PathText, services: ServicesDep) -> BulkView:
    async with services.sessions() as session:
        return await run_view(session, bulkId)
