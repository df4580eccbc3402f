"""POST and GET /api/crm/sync/bulk (ops): resync stored records in bulk."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from app.deps import OpsAuth, ServicesDep
from app.ops.bulk import BulkRequest, BulkRuns, recent_runs, run_view, status_url
from app.routers.body import documented, json_body

router = APIRouter(prefix="/api/crm/sync", tags=["bulk"])
routers = [router]


def get_bulk_runs(request: Request) -> BulkRuns:
    runs: BulkRuns = request.app.state.bulk_runs
    return runs


BulkRunsDep = Annotated[BulkRuns, Depends(get_bulk_runs)]


@router.post(
    "/bulk",
    dependencies=[OpsAuth],
    status_code=202,
    summary="Resync stored records in bulk",
    responses={200: {"description": "with ?wait=true: the run finished"}},
    openapi_extra=documented(BulkRequest),
)
async def start_bulk(
    body: Annotated[BulkRequest, Depends(json_body(BulkRequest))],
    request: Request,
    services: ServicesDep,
    runs: BulkRunsDep,
    wait: Annotated[bool, Query(description="wait for the run to finish")] = False,
) -> JSONResponse:
    """Queues every record of `syncType` (in chunks) for each provider; what a provider already
    confirmed is skipped unless `force`. 202 with `bulkId` and `statusUrl`; with `?wait=true`
    200 and the results once done (202 with progress if BULK_WAIT_SECONDS pass first)."""
    run = await runs.start(
        services.settings, body, requested_by=getattr(request.state, "api_key", None)
    )
    if not wait:
        return JSONResponse(
            {
                "success": True,
                "message": "Bulk sync started",
                "bulkId": run.id,
                "statusUrl": status_url(run.id),
            },
            202,
        )
    await runs.wait(run.id, services.settings.bulk.wait_seconds)
    async with services.sessions() as session:
        view = await run_view(session, run.id)
    return JSONResponse(view, _status_code(view))


@router.get("/bulk", dependencies=[OpsAuth], summary="The newest bulk runs, newest first")
async def bulk_runs(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    async with services.sessions() as session:
        return {"success": True, "runs": await recent_runs(session, limit)}


@router.get("/bulk/{bulkId}", dependencies=[OpsAuth], summary="A bulk run's progress and results")
async def bulk_status(bulkId: str, services: ServicesDep) -> JSONResponse:
    async with services.sessions() as session:
        view = await run_view(session, bulkId)
    return JSONResponse(view, 200)


def _status_code(view: dict[str, Any]) -> int:
    if view["status"] == "completed":
        return 200
    if view["status"] == "failed":
        return 500
    return 202
