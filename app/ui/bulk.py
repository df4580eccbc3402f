"""Bulk runs: start one with the API's options, watch each kind's progress live, see results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.deps import ServicesDep
from app.errors import InvalidInput
from app.ops.bulk import BulkRequest, BulkRuns, recent_runs, run_view
from app.ops.models import ACTIVE_BULK
from app.ops.schemas import BulkView
from app.ui.records import STOP_POLLING
from app.ui.web import CheckedDep, OperatorDep, UiRoute, render

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
SYNC_TYPES = ["all", "owners", "properties", "enquiries", "bookings", "memberships"]
ACTIVE = {s.value for s in ACTIVE_BULK}


def _progress(request: Request, who: Any, run: BulkView) -> Response:
    active = run.status in ACTIVE
    return render(
        request,
        "_bulk_progress.html",
        {"run": run, "active": active},
        who=who,
        status_code=200 if active else STOP_POLLING,
    )


@router.get("/bulk")
async def bulk(request: Request, services: ServicesDep, who: OperatorDep) -> Response:
    async with services.sessions() as session:
        runs = await recent_runs(session, 20)
    context = {"page": "bulk", "runs": runs, "sync_types": SYNC_TYPES}
    return render(request, "bulk.html", context, who=who)


@router.post("/bulk")
async def start(
    request: Request,
    services: ServicesDep,
    who: CheckedDep,
    syncType: Annotated[str, Form()],
    onlyFailed: Annotated[bool, Form()] = False,
    force: Annotated[bool, Form()] = False,
    provider: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """As POST /api/crm/sync/bulk; answers the run's live progress."""
    try:
        wanted = BulkRequest(
            syncType=syncType,
            onlyFailed=onlyFailed,
            force=force,
            provider=provider or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "syncType"
        raise InvalidInput(field, first["msg"]) from None
    runs: BulkRuns = request.app.state.bulk_runs
    run = await runs.start(services.settings, wanted, requested_by=who.name)
    async with services.sessions() as session:
        view = await run_view(session, run.id)
    return _progress(request, who, view)


@router.get("/bulk/{bulk_id}")
async def one_run(
    request: Request, services: ServicesDep, who: OperatorDep, bulk_id: str
) -> Response:
    async with services.sessions() as session:
        view = await run_view(session, bulk_id)
    context = {"page": "bulk", "run": view, "active": view.status in ACTIVE}
    return render(request, "bulk_run.html", context, who=who)


@router.get("/bulk/{bulk_id}/progress")
async def progress(
    request: Request, services: ServicesDep, who: OperatorDep, bulk_id: str
) -> Response:
    """Polled every second while the run is active; 286 (stop polling) once it is over."""
    async with services.sessions() as session:
        view = await run_view(session, bulk_id)
    return _progress(request, who, view)
