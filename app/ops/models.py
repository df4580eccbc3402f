"""The bulk_runs table: one row per bulk resync, its filters, how far it got, what came of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow
from app.models import Record, SyncJob, SyncLog


class BulkStatus(StrEnum):
    queued = "queued"  # created, no runner yet
    enqueueing = "enqueueing"  # walking the records chunk by chunk, queueing jobs
    delivering = "delivering"  # every job queued; waiting for the workers to settle them
    completed = "completed"  # every job settled; `results` frozen
    failed = "failed"  # the run itself broke (not a record failing): `error` says why


ACTIVE_BULK = (BulkStatus.queued, BulkStatus.enqueueing, BulkStatus.delivering)


class BulkRun(Base):
    """A bulk resync. Its runner holds a lease it renews as it goes, so a run whose process died
    is picked up by another process and resumes after the last chunk it committed."""

    __tablename__ = "bulk_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=BulkStatus.queued)
    sync_type: Mapped[str] = mapped_column(String(32))
    kinds: Mapped[list[str]] = mapped_column(JSONType)
    providers: Mapped[list[str]] = mapped_column(JSONType)
    only_failed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    force: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    # Resume point: the kind being walked and the last record id whose jobs are committed.
    cursor_kind: Mapped[str | None] = mapped_column(String(32))
    cursor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # Per kind, counted as chunks commit: {"owner": {"queued": n, "skipped": n}}.
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    results: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # frozen when completed
    error: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_bulk_runs_status", "status", "lease_until"),)


# Indexes the ops queries need on the pipeline's tables (declared here to keep models.py as is):
# walking one kind in id order, counting a bulk's jobs by status, following one job's log rows.
Index("ix_records_kind_id", Record.kind, Record.id)
Index("ix_sync_jobs_bulk_status", SyncJob.bulk_id, SyncJob.status)
Index("ix_sync_log_job_id", SyncLog.job_id, SyncLog.id)


class ErasureStatus(StrEnum):
    queued = "queued"  # created, no runner yet
    deleting = "deleting"  # the person's records are deleted at every CRM, through the outbox
    scrubbing = "scrubbing"  # every CRM answered; our own stores are being scrubbed
    completed = "completed"  # done: only the audit (hashes, counts, times) is left


ACTIVE_ERASURE = (ErasureStatus.queued, ErasureStatus.deleting, ErasureStatus.scrubbing)


class Erasure(Base):
    """A data-subject erasure and, once completed, its audit row: a keyed hash of the email (and
    of the user id), counts per store, times; no personal data. While it runs, `subject` holds
    what is being erased (emails, names, phones), so a run whose process died can be resumed;
    it is cleared when the run completes."""

    __tablename__ = "erasures"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=ErasureStatus.queued)
    email_hash: Mapped[str | None] = mapped_column(String(64))  # HMAC-SHA256, hex
    user_id_hash: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # only while running
    # records.id of the records the run deletes (owner side) or blanks (guest side).
    record_ids: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # per store
    providers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # per provider
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(64))
    runner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_erasures_status", "status", "lease_until"),
        Index("ix_erasures_email_hash", "email_hash"),
    )
