"""A record: look it up by kind and website id; its snapshot, status per provider, timeline;
re-sync and retry it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from app.db import transaction
from app.deps import ServicesDep
from app.errors import AppError, InvalidInput
from app.ops.logs import parse_kind, retry_jobs, text_param
from app.ops.timeline import record_detail
from app.records import PUBLIC_KINDS, SPECS, Kind
from app.runtime import Services
from app.sync.service import record_status, sync_record
from app.ui.web import CheckedDep, Operator, OperatorDep, UiRoute, render

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
STOP_POLLING = 286  # htmx stops polling an element answered with this status
Id = Annotated[str, Form(min_length=1, max_length=255)]


def _kind(value: str) -> Kind:
    kind = parse_kind(value, "kind")
    if kind is None or kind.value not in PUBLIC_KINDS:
        raise InvalidInput("kind", f"{value!r} is not one of {', '.join(PUBLIC_KINDS)}")
    return kind


@router.get("/records")
async def records(
    request: Request,
    services: ServicesDep,
    who: OperatorDep,
    kind: str = "owner",
    id: str = "",
) -> Response:
    context: dict[str, Any] = {"page": "records", "kinds": PUBLIC_KINDS, "kind": kind}
    context["id"] = id.strip()
    if not id.strip():
        return render(request, "records.html", context, who=who)
    try:
        detail = await record_detail(
            services, _kind(kind), text_param(id.strip(), "id") or id.strip()
        )
    except AppError as exc:  # the search form stays, with the reason beside it
        context["error"] = exc.message
        return render(request, "records.html", context, who=who, status_code=exc.status_code)
    context |= {"detail": detail, "id_field": SPECS[Kind(detail.entityType)].id_field}
    return render(request, "records.html", context, who=who)


async def _status(
    request: Request, services: Services, who: Operator, kind: Kind, id: str
) -> Response:
    status = await record_status(services, kind, id)
    settled = status.syncStatus != "pending"
    context = {"status": status, "kind": kind.value, "id": id}
    return render(
        request,
        "_record_status.html",
        context,
        who=who,
        status_code=STOP_POLLING if settled else 200,
    )


@router.get("/records/status")
async def record_status_fragment(
    request: Request, services: ServicesDep, who: OperatorDep, kind: str, id: str
) -> Response:
    """The per-provider table, polled by the page until the record is no longer pending."""
    return await _status(request, services, who, _kind(kind), id)


@router.post("/records/resync")
async def resync(
    request: Request,
    services: ServicesDep,
    who: CheckedDep,
    kind: Annotated[str, Form()],
    id: Id,
) -> Response:
    """The stored snapshot again, as POST /api/crm/sync/{kind} with only the id does."""
    record_kind = _kind(kind)
    fields = {SPECS[record_kind].id_field: id}
    await sync_record(services, record_kind, fields, respond_async=True)
    return await _status(request, services, who, record_kind, id)


@router.post("/records/retry")
async def retry(
    request: Request,
    services: ServicesDep,
    who: CheckedDep,
    kind: Annotated[str, Form()],
    id: Id,
) -> Response:
    """The record's failed and dead jobs back in the queue, as POST /api/crm/sync/retry does."""
    record_kind = _kind(kind)
    async with transaction(services.sessions) as session:
        requeued = await retry_jobs(session, ["failed", "dead"], kind=record_kind, entity_id=id)
    if requeued:
        services.kick()
    return await _status(request, services, who, record_kind, id)
