"""GET /api/crm/leads: pulled contacts, newest first, with filters (keyset on id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import InvalidInput
from app.pull.models import Lead
from app.pull.schemas import LeadPage, lead_view
from app.records import normalise_phone


@dataclass(frozen=True, slots=True)
class LeadFilter:
    q: str | None = None  # in name, email, phone or company
    email: str | None = None
    phone: str | None = None  # any format; compared in E.164
    crm_id: str | None = None
    crm_source: str | None = None
    crm_status: str | None = None
    crm_stage: str | None = None
    user_id: str | None = None
    modified_since: datetime | None = None  # aware
    limit: int = 50
    before: int | None = None  # the cursor: leads with a smaller id
    include_deleted: bool = False  # deleted in the CRM, or folded into another by a merge


async def list_leads(session: AsyncSession, wanted: LeadFilter, region: str) -> LeadPage:
    """A page of leads; raises InvalidInput for a phone that is not one, or a naive time."""
    stmt = select(Lead).order_by(Lead.id.desc()).limit(wanted.limit + 1)
    if not wanted.include_deleted:
        stmt = stmt.where(Lead.deleted_at.is_(None))
    if wanted.q:
        q = wanted.q.strip()
        like = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(
                Lead.email.like(like),
                Lead.phone.like(f"%{q}%"),
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
    for column, value in (
        (Lead.crm_id, wanted.crm_id),
        (Lead.crm_source, wanted.crm_source),
        (Lead.crm_status, wanted.crm_status),
        (Lead.crm_stage, wanted.crm_stage),
        (Lead.record_id, wanted.user_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    if wanted.modified_since:
        if wanted.modified_since.tzinfo is None:
            raise InvalidInput("modifiedSince", "give a time zone (e.g. Z)")
        stmt = stmt.where(Lead.crm_modified_at >= wanted.modified_since)
    if wanted.before:
        stmt = stmt.where(Lead.id < wanted.before)
    leads = list(await session.scalars(stmt))
    more = len(leads) > wanted.limit
    leads = leads[: wanted.limit]
    return LeadPage(
        leads=[lead_view(lead) for lead in leads], nextCursor=leads[-1].id if more else None
    )
