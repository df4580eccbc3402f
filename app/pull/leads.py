"""Pulled contacts (leads) for ops: filtered, newest first, with id-cursor paging. What
GET /api/crm/leads and the dashboard's Leads page both show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.pull.models import Lead
from app.records import normalise_phone
from app.times import iso


@dataclass(frozen=True, slots=True)
class LeadFilter:
    """`q` is a part of the name, email, phone or company; `phone` is compared in E.164 (read
    in `region` when it has no country code); `before` is the previous page's nextCursor."""

    q: str | None = None
    email: str | None = None
    phone: str | None = None
    crm_id: str | None = None
    crm_source: str | None = None
    crm_status: str | None = None
    crm_stage: str | None = None
    user_id: str | None = None
    modified_since: datetime | None = None
    limit: int = 50
    before: int | None = None


@dataclass(frozen=True, slots=True)
class LeadPage:
    leads: list[Lead]
    next_cursor: int | None


async def find_leads(session: AsyncSession, wanted: LeadFilter, region: str) -> LeadPage:
    """Newest first. Raises InvalidInput (422) naming `phone` or `modifiedSince`."""
    stmt = select(Lead).order_by(Lead.id.desc()).limit(wanted.limit + 1)
    if wanted.q and wanted.q.strip():
        term = wanted.q.strip()
        like = f"%{term.lower()}%"
        stmt = stmt.where(
            or_(
                Lead.email.like(like),
                Lead.phone.like(f"%{term}%"),
                Lead.first_name.ilike(like),
                Lead.last_name.ilike(like),
                Lead.company.ilike(like),
            )
        )
    if wanted.email:
        stmt = stmt.where(Lead.email == wanted.email.strip().lower())
    if wanted.phone:
        try:
            phone = normalise_phone(wanted.phone, region)
        except ValueError as exc:
            raise InvalidInput("phone", str(exc)) from None
        stmt = stmt.where(Lead.phone == phone)
    if wanted.crm_id:
        stmt = stmt.where(Lead.crm_id == wanted.crm_id)
    if wanted.crm_source:
        stmt = stmt.where(Lead.crm_source == wanted.crm_source)
    if wanted.crm_status:
        stmt = stmt.where(Lead.crm_status == wanted.crm_status)
    if wanted.crm_stage:
        stmt = stmt.where(Lead.crm_stage == wanted.crm_stage)
    if wanted.user_id:
        stmt = stmt.where(Lead.record_id == wanted.user_id)
    if wanted.modified_since:
        if wanted.modified_since.tzinfo is None:
            raise InvalidInput("modifiedSince", "give a time zone (e.g. Z)")
        stmt = stmt.where(Lead.crm_modified_at >= wanted.modified_since)
    if wanted.before:
        stmt = stmt.where(Lead.id < wanted.before)
    leads = list(await session.scalars(stmt))
    more = len(leads) > wanted.limit
    leads = leads[: wanted.limit]
    return LeadPage(leads, leads[-1].id if more else None)


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
