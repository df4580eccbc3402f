"""One record's story for ops: its stored snapshot, where it stands at each provider, and what
happened to it in time order (accepted, queued, every attempt with its request and response)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from app.errors import NotFound
from app.models import SyncJob
from app.ops.logs import LogFilter, find_logs, log_view
from app.ops.schemas import LogRow
from app.records import SPECS, Kind
from app.runtime import Services
from app.sync.accept import load_record
from app.sync.schemas import SyncStatus
from app.sync.service import record_status
from app.times import iso

ATTEMPTS_SHOWN = 100  # the newest attempts; older ones are in the sync log


EventKind = Literal["accepted", "changed", "queued", "job", "attempt"]


class TimelineEntry(BaseModel):
    at: str = Field(description="ISO 8601")
    event: EventKind
    provider: str | None = None
    summary: str
    log: LogRow | None = Field(
        None, description="for an attempt: the sync-log row, payloads redacted as stored"
    )


class JobView(BaseModel):
    jobId: int
    provider: str
    status: str
    attempts: int
    deferrals: int
    runAfter: str | None
    lastError: str | None
    bulkId: str | None


class RecordDetail(BaseModel):
    entityType: str
    entityId: str
    snapshot: dict[str, Any] = Field(description="the latest content accepted, normalised")
    contentHash: str
    status: SyncStatus = Field(description="as GET /api/crm/sync/{kind} answers it")
    jobs: list[JobView]
    timeline: list[TimelineEntry] = Field(description="oldest first")
    olderAttempts: bool = Field(description=f"more than {ATTEMPTS_SHOWN} attempts: see the log")


def _entry(
    at: datetime, event: EventKind, summary: str, provider: str | None = None
) -> TimelineEntry:
    return TimelineEntry(at=iso(at) or "", event=event, provider=provider, summary=summary)


def _attempt(row: LogRow) -> TimelineEntry:
    http = f", HTTP {row.httpStatus}" if row.httpStatus is not None else ""
    error = f": {row.error}" if row.error else ""
    return TimelineEntry(
        at=row.createdAt,
        event="attempt",
        provider=row.provider,
        summary=f"attempt {row.attempt} ({row.action}) {row.status}{http}{error}",
        log=row,
    )


async def record_detail(services: Services, kind: Kind, external_id: str) -> RecordDetail:
    """404 (NotFound) for a record never sent."""
    status = await record_status(services, kind, external_id)
    async with services.sessions() as session:
        record = await load_record(session, kind, external_id)
        if record is None:  # deleted since the status was read
            raise NotFound(f"{SPECS[kind].label} {external_id} is not known here")
        jobs = list(
            await session.scalars(
                select(SyncJob).where(SyncJob.record_id == record.id).order_by(SyncJob.provider)
            )
        )
        page = await find_logs(
            session, LogFilter(entity_type=kind, entity_id=external_id, limit=ATTEMPTS_SHOWN)
        )
    # Sorted by the times themselves: ISO text leaves out zero microseconds, so it misorders.
    order = {"accepted": 0, "changed": 1, "queued": 2, "attempt": 3, "job": 4}
    events: list[tuple[datetime, TimelineEntry]] = [
        (record.created_at, _entry(record.created_at, "accepted", "first accepted"))
    ]
    if record.updated_at != record.created_at:
        events.append(
            (record.updated_at, _entry(record.updated_at, "changed", "latest snapshot accepted"))
        )
    for job in jobs:
        queued = f"job {job.id} queued for {job.provider}"
        now = f"job {job.id} is {job.status}" + (f": {job.last_error}" if job.last_error else "")
        events.append((job.created_at, _entry(job.created_at, "queued", queued, job.provider)))
        events.append((job.updated_at, _entry(job.updated_at, "job", now, job.provider)))
    events += [(row.created_at, _attempt(log_view(row))) for row in page.rows]
    events.sort(key=lambda pair: (pair[0], order[pair[1].event]))
    timeline = [entry for _, entry in events]
    return RecordDetail(
        entityType=kind.value,
        entityId=external_id,
        snapshot=record.data,
        contentHash=record.content_hash,
        status=status,
        jobs=[
            JobView(
                jobId=job.id,
                provider=job.provider,
                status=job.status,
                attempts=job.attempts,
                deferrals=job.deferrals,
                runAfter=iso(job.run_after),
                lastError=job.last_error,
                bulkId=job.bulk_id,
            )
            for job in jobs
        ],
        timeline=timeline,
        olderAttempts=page.next_cursor is not None,
    )
