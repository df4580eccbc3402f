"""What the pull endpoints answer, as models: a pull's counts, and pulled contacts (leads)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.pull.models import Lead
from app.times import iso


class Skip(BaseModel):
    crmId: str
    reason: str


class PullConflict(BaseModel):
    """A contact matching one lead by phone and another by email: nothing changed."""

    crmId: str
    byPhone: list[str] = Field(description="lead ids (or new:<crmId>) its phone matches")
    byEmail: list[str] = Field(description="lead ids (or new:<crmId>) its email matches")
    reason: str


class PullAnswer(BaseModel):
    success: bool = True
    runId: int | None = Field(description="the pull_runs row")
    created: int
    updated: int
    skipped: int
    fetched: int
    skipReasons: dict[str, int] = Field(description="skips counted by reason")
    skips: list[Skip] = Field(description="a sample of the skips, with reasons")
    conflicts: list[PullConflict]
    requests: int = Field(description="requests made to the CRM")
    seconds: float
    rateLimited: int = Field(0, description="429s met and waited out (the pull went on)")
    complete: bool = Field(
        True, description="false: paused by a long 429 wait (daily budget); pages kept"
    )
    stoppedBy: str | None = Field(None, description="why a paused pull stopped")
    provider: Literal["hubspot"]
    strategy: Literal["append", "overwrite", "preview"]


class LeadView(BaseModel):
    """A contact pulled from a CRM."""

    id: int
    crmSource: str
    crmId: str
    firstName: str | None
    lastName: str | None
    name: str | None
    email: str | None
    phone: str | None = Field(description="E.164")
    phoneRaw: str | None = Field(description="as the CRM had it")
    company: str | None
    crmStatus: str | None
    crmStage: str | None
    crmOwner: str | None
    crmLastActivityAt: str | None
    crmModifiedAt: str | None
    userId: str | None = Field(description="the website's owner id, when it is one of ours")
    lastCrmSyncAt: str | None
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None = Field(
        None, description="deleted in the CRM (or merged away); listed with includeDeleted=true"
    )
    mergedIntoId: int | None = Field(None, description="the lead a CRM merge folded it into")


class LeadPage(BaseModel):
    success: bool = True
    leads: list[LeadView]
    nextCursor: int | None = Field(description="pass as `cursor` for older leads; null: last")


def lead_view(lead: Lead) -> LeadView:
    return LeadView(
        id=lead.id,
        crmSource=lead.crm_source,
        crmId=lead.crm_id,
        firstName=lead.first_name,
        lastName=lead.last_name,
        name=" ".join(p for p in (lead.first_name, lead.last_name) if p) or None,
        email=lead.email,
        phone=lead.phone,
        phoneRaw=lead.phone_raw,
        company=lead.company,
        crmStatus=lead.crm_status,
        crmStage=lead.crm_stage,
        crmOwner=lead.crm_owner,
        crmLastActivityAt=iso(lead.crm_last_activity_at),
        crmModifiedAt=iso(lead.crm_modified_at),
        userId=lead.record_id,
        lastCrmSyncAt=iso(lead.last_crm_sync_at),
        createdAt=iso(lead.created_at),
        updatedAt=iso(lead.updated_at),
        deletedAt=iso(lead.deleted_at),
        mergedIntoId=lead.merged_into_id,
    )
