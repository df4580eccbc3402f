"""Webhooks: the Stripe and HubSpot inbox, filtered by source, status and type; an event's body;
replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from app.deps import ServicesDep
from app.ui.web import CheckedDep, OperatorDep, UiRoute, render
from app.webhooks.models import EventStatus
from app.webhooks.service import Source, list_events, replay_event, show_event

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/webhooks")
async def webhooks(
    request: Request,
    services: ServicesDep,
    who: OperatorDep,
    source: Source | None = None,
    status: EventStatus | None = None,
    type: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    page = await list_events(
        services,
        source=source,
        status=status,
        event_type=type.strip() or None,
        owner_id=None,
        event_id=None,
        limit=limit,
        cursor=cursor,
    )
    context = {
        "page": "webhooks",
        "events": page,
        "filters": {"source": source or "", "status": status or "", "type": type, "limit": limit},
        "statuses": [s.value for s in EventStatus],
    }
    return render(request, "webhooks.html", context, who=who)


@router.get("/webhooks/{id}")
async def event(request: Request, services: ServicesDep, who: OperatorDep, id: RowId) -> Response:
    detail = await show_event(services, id)
    return render(request, "webhook.html", {"page": "webhooks", "event": detail}, who=who)


@router.post("/webhooks/{id}/replay")
async def replay(request: Request, services: ServicesDep, who: CheckedDep, id: RowId) -> Response:
    """As POST /api/webhooks/events/{id}/replay; answers the event's row, queued again."""
    replayed = await replay_event(services, id)
    context = {"e": replayed.event, "note": replayed.message}
    return render(request, "_webhook_row.html", context, who=who)
