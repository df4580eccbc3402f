"""Pulled contacts (the seeds' `leads`), the CRM ids merged into each, cursors and pull runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow
from app.models import BigId


class Lead(Base):
    """One person as the CRMs know them, deduplicated by CRM id, then E.164 phone, then email.
    Free-text fields are TEXT: HubSpot's text properties hold up to 65,536 characters
    (https://knowledge.hubspot.com/properties/property-field-types-in-hubspot)."""

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    crm_source: Mapped[str] = mapped_column(String(32))
    crm_id: Mapped[str] = mapped_column(String(64))  # the first CRM id that made this lead
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))  # lower-cased
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    phone_raw: Mapped[str | None] = mapped_column(Text)  # as the CRM had it
    company: Mapped[str | None] = mapped_column(Text)
    lead_type: Mapped[str | None] = mapped_column(String(64))
    crm_status: Mapped[str | None] = mapped_column(Text)
    crm_stage: Mapped[str | None] = mapped_column(Text)
    crm_description: Mapped[str | None] = mapped_column(Text)
    crm_owner: Mapped[str | None] = mapped_column(Text)
    crm_owner_email: Mapped[str | None] = mapped_column(String(320))
    crm_last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    crm_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The website owner (records.external_id) when the CRM contact is one we pushed there.
    record_id: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    last_crm_sync_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # HubSpot's contact.deletion (or a merge into another lead): kept, but not listed by default.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(BigId)  # the lead a merge folded it into

    __table_args__ = (
        Index("ix_leads_phone", "phone"),
        Index("ix_leads_email", "email"),
        Index("ix_leads_record_id", "record_id"),
    )


class LeadCrmId(Base):
    """Every CRM contact merged into a lead: dedupe by CRM id looks here first."""

    __tablename__ = "lead_crm_ids"

    crm_source: Mapped[str] = mapped_column(String(32), primary_key=True)
    crm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id", ondelete="CASCADE"))
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of what the CRM last sent

    __table_args__ = (Index("ix_lead_crm_ids_lead_id", "lead_id"),)


class PullCursor(Base):
    """How far a provider's incremental pull has got: the newest modification time committed."""

    __tablename__ = "pull_cursors"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PullRun(Base):
    """One pull: on demand, from a webhook, or the scheduled one of a period. A scheduled run's
    (provider, period) is unique, so however many workers race for a period one row wins."""

    __tablename__ = "pull_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule / api / cli / webhook
    strategy: Mapped[str] = mapped_column(String(16))
    period: Mapped[str | None] = mapped_column(String(64))  # schedule only
    status: Mapped[str] = mapped_column(String(16), default="running")  # running/done/failed
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("provider", "period", name="uq_pull_runs_provider_period"),
        Index("ix_pull_runs_provider_id", "provider", "id"),
    )
