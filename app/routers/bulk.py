"""POST /api/crm/sync/{kind}/batch (website), POST and GET /api/crm/sync/bulk (ops)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from app.db import transaction
from app.deps import OpsAuth, ServicesDep, SyncAuth
from app.ops.batch import MAX_RECORDS, accept_batch, parse_array
from app.ops.bulk import BulkRequest, BulkRuns, run_view, status_url
from app.records import PUBLIC_KINDS, SPECS, Kind, KindSpec
from app.routers.body import documented, json_body

router = APIRouter(prefix="/api/crm/sync", tags=["bulk"])


def get_bulk_runs(request: Request) -> BulkRuns:
    runs: BulkRuns = request.app.state.bulk_runs
    return runs


BulkRunsDep = Annotated[BulkRuns, Depends(get_bulk_runs)]


def _add_batch_route(spec: KindSpec) -> None:
    kind = spec.kind

    async def post(request: Request, services: ServicesDep) -> JSONResponse:
        items = parse_array(await request.body())
        settings = services.settings
        async with transaction(services.sessions) as session:
            result = await accept_batch(
                session, kind, items, settings.providers, settings.phone_default_region
            )
        if result.queued:
            services.kick()
        rejected = len(result.rejections)
        body: dict[str, Any] = {
            "success": rejected == 0,
            "message": f"{result.accepted} {kind.value} record(s) accepted, {rejected} rejected",
            "accepted": result.accepted,
            "rejected": rejected,
            "queued": result.queued,
            "rejections": [r.view() for r in result.rejections],
        }
        return JSONResponse(body, 202)

    post.__name__ = f"batch_{kind.value}"
    router.add_api_route(
        f"/{kind.value}/batch",
        post,
        methods=["POST"],
        status_code=202,
        dependencies=[SyncAuth],
        summary=f"Sync up to {MAX_RECORDS:,} {kind.value} records",
        description=(
            f"A JSON array of {kind.value} records (`{spec.id_field}` required in each). Each is "
            "validated on its own: the accepted ones are stored and queued in one transaction; "
            "each rejected one is reported with its index, id, field and reason. 202 with the "
            f"counts; 413 over {MAX_RECORDS:,} records."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "maxItems": MAX_RECORDS,
                            "items": {"type": "object", "required": [spec.id_field]},
                        }
                    }
                },
            }
        },
        responses={413: {"description": "too many records"}, 422: {}},
    )


for _kind in PUBLIC_KINDS:
    _add_batch_route(SPECS[Kind(_kind)])


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
