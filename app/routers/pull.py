"""POST /api/crm/pull and GET /api/crm/leads (ops); the HubSpot webhook is in routers/webhooks."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict

from app.deps import OpsAuth, ServicesDep, SessionDep
from app.pull.leads import LeadFilter, list_leads
from app.pull.merge import Strategy
from app.pull.schemas import LeadPage, PullAnswer
from app.pull.service import PullRunView, pull, recent_pulls, source_for
from app.records import Instant
from app.routers.answers import AUTHED, BODY, COMMON, errors
from app.routers.body import JsonBodyRoute, example_body
from app.routers.params import Cursor, PageLimit, Search, Text

router = APIRouter(
    prefix="/api/crm",
    tags=["pull"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["hubspot"] = "hubspot"
    strategy: Strategy | None = None  # default: PULL_STRATEGY


PullBody = Annotated[
    PullRequest,
    Body(
        openapi_examples=example_body(
            what_would_change={"provider": "hubspot", "strategy": "preview"},
            fill_only_empty_fields={"provider": "hubspot", "strategy": "append"},
        )
    ),
]


@router.post(
    "/pull",
    response_model=PullAnswer,
    summary="Pull contacts changed in a CRM since the last pull, and merge them into leads",
    description=(
        "strategy: `overwrite` (the CRM's non-empty values win), `append` (only empty fields "
        "are filled) or `preview` (the same counts, nothing changed). Answers created, updated "
        "and skipped (with reasons) and conflicts; 502 if the CRM failed the pull."
    ),
    responses=errors(404, 502) | BODY,
)
async def pull_now(body: PullBody, services: ServicesDep) -> PullAnswer:
    settings = services.settings
    source = source_for(services.providers, body.provider, settings)
    strategy = body.strategy or Strategy(settings.pull.strategy)
    outcome = await pull(services.sessions, source, settings, strategy=strategy, trigger="api")
    return PullAnswer.model_validate(
        outcome.view() | {"provider": body.provider, "strategy": strategy.value}
    )


@router.get("/pull/runs", response_model=list[PullRunView], summary="The newest pulls")
async def pull_runs(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[PullRunView]:
    return await recent_pulls(session, limit)


@router.get(
    "/leads", response_model=LeadPage, summary="Pulled contacts, newest first, with filters"
)
async def leads(
    session: SessionDep,
    services: ServicesDep,
    q: Annotated[Search | None, Query(description="in name, email, phone or company")] = None,
    email: Text | None = None,
    phone: Annotated[Text | None, Query(description="any format; compared in E.164")] = None,
    crmId: Text | None = None,
    crmSource: Text | None = None,
    crmStatus: Text | None = None,
    crmStage: Text | None = None,
    userId: Text | None = None,
    modifiedSince: Instant | None = None,
    limit: PageLimit = 50,
    cursor: Cursor | None = None,
    includeDeleted: Annotated[
        bool, Query(description="also leads deleted in the CRM or folded into another by a merge")
    ] = False,
) -> LeadPage:
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
        include_deleted=includeDeleted,
    )
    return await list_leads(session, wanted, services.settings.phone_default_region)
