"""The sync log: the filters of GET /api/crm/sync/logs, cursor paging, each row's payloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.deps import ServicesDep
from app.errors import AppError, InvalidInput
from app.models import LogStatus
from app.ops.logs import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    LogFilter,
    decode_cursor,
    find_logs,
    log_view,
    parse_kind,
    parse_since,
    text_param,
)
from app.records import PUBLIC_KINDS
from app.ui.web import OperatorDep, UiRoute, render

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


@router.get("/logs")
async def logs(
    request: Request,
    services: ServicesDep,
    who: OperatorDep,
    entityType: str = "",
    entityId: str = "",
    provider: str = "",
    status: str = "",
    since: str = "",
    jobId: str = "",
    bulkId: str = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str = "",
) -> Response:
    filters = {
        "entityType": entityType,
        "entityId": entityId.strip(),
        "provider": provider,
        "status": status,
        "since": since.strip(),
        "jobId": jobId.strip(),
        "bulkId": bulkId.strip(),
        "limit": limit,
    }
    context: dict[str, Any] = {"page": "logs", "filters": filters, "kinds": PUBLIC_KINDS}
    try:
        wanted = LogFilter(
            entity_type=parse_kind(entityType or None),
            entity_id=text_param(entityId.strip() or None, "entityId"),
            provider=text_param(provider or None, "provider"),
            status=_status(status),
            since=parse_since(since) if since.strip() else None,
            job_id=_job_id(jobId),
            bulk_id=text_param(bulkId.strip() or None, "bulkId"),
            limit=limit,
            before=decode_cursor(cursor) if cursor else None,
        )
        async with services.sessions() as session:
            page = await find_logs(session, wanted)
    except AppError as exc:  # the filters stay, with the reason beside them
        context["error"] = exc.message
        return render(request, "logs.html", context, who=who, status_code=exc.status_code)
    context |= {
        "rows": [log_view(row) for row in page.rows],
        "next_cursor": page.next_cursor,
        "paged": bool(cursor),
    }
    return render(request, "logs.html", context, who=who)


def _status(value: str) -> LogStatus | None:
    if not value:
        return None
    try:
        return LogStatus(value)
    except ValueError:
        raise InvalidInput("status", f"{value!r} is not success, failed or skipped") from None


def _job_id(value: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit() or not 1 <= int(value) < 2**63:
        raise InvalidInput("jobId", f"{value!r} is not a job id")
    return int(value)
