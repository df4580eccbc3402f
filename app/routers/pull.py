"""POST /api/crm/pull, GET /api/crm/leads (ops) and POST /api/webhooks/hubspot (signed)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select

from app.deps import OpsAuth, ServicesDep, SessionDep
from app.errors import InvalidInput
from app.pull.merge import Strategy
from app.pull.models import Lead
from app.pull.service import pull, source_for
from app.records import normalise_phone
from app.times import iso

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


def lead_view(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "crmSource": lead.crm_source,
        "crmId": lead.crm_id,
        "firstName": lead.first_name,
        "lastName": lead.last_name,
        "name": " ".join(p for p in (lead.first_name, lead.last_name) if p) or None,
        "email": lead.email,
        "phone": lead.phone,
        "phoneRaw": lead.phone_raw,
        "company": lead.company,
        "crmStatus": lead.crm_status,
        "crmStage": lead.crm_stage,
        "crmOwner": lead.crm_owner,
        "crmLastActivityAt": iso(lead.crm_last_activity_at),
        "crmModifiedAt": iso(lead.crm_modified_at),
        "userId": lead.record_id,
        "lastCrmSyncAt": iso(lead.last_crm_sync_at),
        "createdAt": iso(lead.created_at),
        "updatedAt": iso(lead.updated_at),
    }


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
    stmt = select(Lead).order_by(Lead.id.desc()).limit(limit + 1)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(
            or_(
                Lead.email.like(like),
                Lead.phone.like(f"%{q.strip()}%"),
                Lead.first_name.ilike(like),
                Lead.last_name.ilike(like),
                Lead.company.ilike(like),
            )
        )
    if email:
        stmt = stmt.where(Lead.email == email.strip().lower())
    if phone:
        try:
            wanted = normalise_phone(phone, services.settings.phone_default_region)
        except ValueError as exc:
            raise InvalidInput("phone", str(exc)) from None
        stmt = stmt.where(Lead.phone == wanted)
    if crmId:
        stmt = stmt.where(Lead.crm_id == crmId)
    if crmSource:
        stmt = stmt.where(Lead.crm_source == crmSource)
    if crmStatus:
        stmt = stmt.where(Lead.crm_status == crmStatus)
    if crmStage:
        stmt = stmt.where(Lead.crm_stage == crmStage)
    if userId:
        stmt = stmt.where(Lead.record_id == userId)
    if modifiedSince:
        if modifiedSince.tzinfo is None:
            raise InvalidInput("modifiedSince", "give a time zone (e.g. Z)")
        stmt = stmt.where(Lead.crm_modified_at >= modifiedSince)
    if cursor:
        stmt = stmt.where(Lead.id < cursor)
    leads = list(await session.scalars(stmt))
    more = len(leads) > limit
    leads = leads[:limit]
    return {
        "success": True,
        "leads": [lead_view(lead) for lead in leads],
        "nextCursor": leads[-1].id if more else None,
    }
