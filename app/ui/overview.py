"""The overview: per provider reachable or held by its circuit breaker, queue, outcomes, a
deliveries-per-minute chart and rate-limit waits; the last pull; the webhook inbox backlog.
Refreshed live by htmx."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.deps import ServicesDep
from app.ops.activity import delivery_activity
from app.ops.status import provider_status
from app.runtime import Services
from app.ui.chart import minute_bars
from app.ui.web import OperatorDep, UiRoute, render
from app.webhooks.service import inbox_counts

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
REFRESH_SECONDS = 5


async def figures(services: Services) -> dict[str, Any]:
    """Everything the overview shows, from the service functions the JSON API answers with:
    GET /api/crm/status, GET /api/crm/sync/activity and the inbox counts of
    GET /api/webhooks/events."""
    status = await provider_status(services)
    async with services.sessions() as session:
        activity = await delivery_activity(session, services.settings.providers)
    inbox = await inbox_counts(services)
    end = datetime.fromisoformat(activity.generatedAt.replace("Z", "+00:00"))
    return {
        "status": status.providers,
        "activity": activity.providers,
        "charts": {
            name: minute_bars(figures.deliveriesPerMinute, end)
            for name, figures in activity.providers.items()
        },
        "inbox": inbox,
        "generated_at": activity.generatedAt,
        "refresh": REFRESH_SECONDS,
    }


@router.get("/")
async def overview(request: Request, services: ServicesDep, who: OperatorDep) -> Response:
    context = await figures(services)
    return render(request, "overview.html", context | {"page": "overview"}, who=who)


@router.get("/overview/live")
async def overview_live(request: Request, services: ServicesDep, who: OperatorDep) -> Response:
    return render(request, "_overview_live.html", await figures(services), who=who)


@router.get("")
async def overview_bare() -> Response:
    return RedirectResponse("/ui/", status_code=308)
