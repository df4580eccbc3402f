"""The pipeline's tables: records, per-provider links, the outbox of jobs and the sync log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, utcnow

# BIGINT on PostgreSQL; INTEGER on SQLite so the column is the rowid and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LinkStatus(StrEnum):
    pending = "pending"
    synced = "synced"
    failed = "failed"
    deleted = "deleted"  # the provider confirmed the record's delete (or never had it)


class Operation(StrEnum):
    """What a job asks of its provider."""

    upsert = "upsert"  # write the record's latest snapshot
    delete = "delete"  # remove the record (the website deleted it)
    erase = "erase"  # forget the person the record names (a data-subject erasure)


class JobStatus(StrEnum):
    queued = "queued"  # due at run_after
    running = "running"  # claimed under a lease
    waiting = "waiting"  # for its parent to get a CRM id at this provider; rechecked at run_after
    done = "done"
    failed = "failed"  # rejected by the CRM; sent again on new content or a retry
    dead = "dead"  # failing past the retry horizon (a dead letter: ops retry it)


class LogStatus(StrEnum):
    success = "success"
    failed = "failed"
    skipped = "skipped"


class Record(Base):
    """The latest snapshot the website (or a Stripe effect) gave us for one record."""

    __tablename__ = "records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    parent_kind: Mapped[str | None] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the website (or an erasure) deleted the record; a later POST clears it.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("kind", "external_id"),
        Index("ix_records_parent", "parent_kind", "parent_id"),
    )


class ProviderLink(Base):
    """Where one record stands at one provider: its CRM id and the last outcome."""

    __tablename__ = "provider_links"

    record_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("records.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    crm_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=LinkStatus.pending)
    # Stored only once the provider accepted that content, so a failure is never "unchanged".
    confirmed_hash: Mapped[str | None] = mapped_column(String(64))
    attempted_hash: Mapped[str | None] = mapped_column(String(64))
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_log_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_provider_links_provider_status", "provider", "status"),)


class SyncJob(Base):
    """The outbox: one row per record and provider, so deliveries of a record never overlap
    and a newer snapshot folds into the queued job instead of adding another."""

    __tablename__ = "sync_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(BigId, ForeignKey("records.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued)
    # A delete takes over a queued upsert of the same record (and an upsert a delete).
    operation: Mapped[str] = mapped_column(
        String(16), default=Operation.upsert, server_default=Operation.upsert.value
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failures that were the record's
    deferrals: Mapped[int] = mapped_column(Integer, default=0)  # 429s, timeouts, parent waits
    # When the record's current run of failures (5xx, timeouts) began: it is dead once that is
    # longer ago than DELIVERY_RETRY_HORIZON. Cleared by a success or a fresh start.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    # Set when new content arrives while the job is running: it goes round once more.
    requeue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    force: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    bulk_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("record_id", "provider"),
        Index("ix_sync_jobs_due", "status", "run_after"),
        Index("ix_sync_jobs_provider_status", "provider", "status"),
        Index("ix_sync_jobs_bulk_id", "bulk_id"),
    )


class BreakerState(StrEnum):
    closed = "closed"  # calls go through
    open = "open"  # held: nothing is sent until retry_at, then one record probes
    half_open = "half_open"  # one probe in flight; its outcome closes or reopens


class ProviderBreaker(Base):
    """A provider's circuit breaker, shared by every worker: failing calls in a row open it, and
    while it is open the provider's jobs stay queued (they use up nothing) until a probe works."""

    __tablename__ = "provider_breakers"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=BreakerState.closed)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # failing calls in a row
    opens: Mapped[int] = mapped_column(Integer, default=0)  # times opened since last closed
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the next probe
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncLog(Base):
    """One row per delivery attempt (or skip), with what was sent and what came back."""

    __tablename__ = "sync_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    provider: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(255))
    crm_id: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    request: Mapped[Any | None] = mapped_column(JSONType)
    response: Mapped[Any | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None]
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    bulk_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_sync_log_entity", "entity_type", "entity_id", "id"),
        Index("ix_sync_log_created_at", "created_at"),
        Index("ix_sync_log_status", "status", "id"),
        Index("ix_sync_log_provider", "provider", "id"),
        Index("ix_sync_log_bulk_id", "bulk_id"),
    )
