"""Leads: pulled contacts with search and paging, and the last pulls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.deps import ServicesDep
from app.pull.leads import LeadFilter, list_leads
from app.pull.service import recent_pulls
from app.ui.web import OperatorDep, UiRoute, render

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


@router.get("/leads")
async def leads(
    request: Request,
    services: ServicesDep,
    who: OperatorDep,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    wanted = LeadFilter(q=q.strip() or None, limit=limit, before=cursor)
    async with services.sessions() as session:
        page = await list_leads(session, wanted, services.settings.phone_default_region)
        pulls = await recent_pulls(session, 10)
    context = {
        "page": "leads",
        "q": q,
        "limit": limit,
        "leads": page.leads,
        "next_cursor": page.nextCursor,
        "paged": cursor is not None,
        "pulls": pulls,
    }
    return render(request, "leads.html", context, who=who)
