"""POST /api/crm/pull, GET /api/crm/leads (ops) and POST /api/webhooks/hubspot (signed)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from app.deps import OpsAuth, ServicesDep, SessionDep
from app.pull.leads import LeadFilter, find_leads, lead_view
from app.pull.merge import Strategy
from app.pull.service import PullRunView, pull, recent_pulls, source_for

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/crm", tags=["pull"], dependencies=[OpsAuth])
routers = [router]


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["hubspot"] = "hubspot"
    strategy: Strategy | None = None  # default: PULL_STRATEGY


@router.post(
    "/pull",
    summary="Pull contacts changed in a CRM since the last pull, and merge them into leads",
    description=(
        "strategy: `overwrite` (the CRM's non-empty values win), `append` (only empty fields "
        "are filled) or `preview` (the same counts, nothing changed). Answers created, updated "
        "and skipped (with reasons) and conflicts; 502 if the CRM failed the pull."
    ),
)
async def pull_now(body: PullRequest, services: ServicesDep) -> dict[str, Any]:
    settings = services.settings
    source = source_for(services.providers, body.provider, settings)
    strategy = body.strategy or Strategy(settings.pull.strategy)
    outcome = await pull(services.sessions, source, settings, strategy=strategy, trigger="api")
    return outcome.view() | {"provider": body.provider, "strategy": strategy.value}


@router.get("/pull/runs", response_model=list[PullRunView], summary="The newest pulls")
async def pull_runs(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[PullRunView]:
    return await recent_pulls(session, limit)


@router.get("/leads", summary="Pulled contacts, newest first, with filters")
async def list_leads(
    session: SessionDep,
    services: ServicesDep,
    q: Annotated[str | None, Query(max_length=200, description="in name, email or phone")] = None,
    email: str | None = None,
    phone: Annotated[str | None, Query(description="any format; compared in E.164")] = None,
    crmId: str | None = None,
    crmSource: str | None = None,
    crmStatus: str | None = None,
    crmStage: str | None = None,
    userId: str | None = None,
    modifiedSince: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        int | None, Query(ge=1, description="nextCursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    wanted = LeadFilter(
        q=q,
        email=email,
        phone=phone,
        crm_id=crmId,
        crm_source=crmSource,
        crm_status=crmStatus,
        crm_stage=crmStage,
        user_id=userId,
        modified_since=modifiedSince,
        limit=limit,
        before=cursor,
    )
    page = await find_leads(session, wanted, services.settings.phone_default_region)
    return {
        "success": True,
        "leads": [lead_view(lead) for lead in page.leads],
        "nextCursor": page.next_cursor,
    }
