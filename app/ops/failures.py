"""Failed and dead jobs for ops: grouped by provider and reason, listed newest first, and
requeued by group or by hand-picked jobs (through `retry_jobs`, as the API and CLI do)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres
from app.models import JobStatus, Record, SyncJob
from app.ops.logs import RetryStatus, retry_jobs
from app.times import iso

STUCK: list[RetryStatus] = ["failed", "dead"]
SHOWN = 200  # jobs listed (and named after a retry) at most; counts are always whole


class FailureGroup(BaseModel):
    """Jobs of one provider stuck with one reason: failed (rejected) or dead (out of attempts)."""

    provider: str
    status: Literal["failed", "dead"]
    reason: str | None = Field(description="the job's last error, as the sync log has it")
    count: int
    firstAt: str | None = Field(description="the oldest such job's last change (ISO 8601)")
    lastAt: str | None = Field(description="the newest such job's last change (ISO 8601)")


class FailedJob(BaseModel):
    jobId: int
    provider: str
    status: str = Field(description="the job's status now: failed, dead, or queued once retried")
    entityType: str
    entityId: str
    reason: str | None
    attempts: int
    updatedAt: str | None


class Failures(BaseModel):
    total: int = Field(description="failed and dead jobs in all")
    groups: list[FailureGroup] = Field(description="largest first")
    jobs: list[FailedJob] = Field(description=f"newest first, at most {SHOWN}")


class Retried(BaseModel):
    requeued: int = Field(description="jobs put back in the queue")
    jobs: list[FailedJob] = Field(description=f"the jobs that were picked, at most {SHOWN}")


def _jobs() -> Select[SyncJob, Record]:
    return select(SyncJob, Record).join(Record, Record.id == SyncJob.record_id)


def _view(job: SyncJob, record: Record) -> FailedJob:
    return FailedJob(
        jobId=job.id,
        provider=job.provider,
        status=job.status,
        entityType=record.kind,
        entityId=record.external_id,
        reason=job.last_error,
        attempts=job.attempts,
        updatedAt=iso(job.updated_at),
    )


async def find_failures(session: AsyncSession, *, limit: int = SHOWN) -> Failures:
    """Every failed and dead job counted by (provider, status, reason); the newest listed."""
    groups = [
        FailureGroup(
            provider=provider,
            status=status,
            reason=reason,
            count=int(n),
            firstAt=iso(first),
            lastAt=iso(last),
        )
        for provider, status, reason, n, first, last in await session.execute(
            select(
                SyncJob.provider,
                SyncJob.status,
                SyncJob.last_error,
                func.count(),
                func.min(SyncJob.updated_at),
                func.max(SyncJob.updated_at),
            )
            .where(SyncJob.status.in_(STUCK))
            .group_by(SyncJob.provider, SyncJob.status, SyncJob.last_error)
        )
    ]
    groups.sort(key=lambda g: (-g.count, g.provider, g.status, g.reason or ""))
    newest = await session.execute(
        _jobs()
        .where(SyncJob.status.in_(STUCK))
        .order_by(SyncJob.updated_at.desc(), SyncJob.id.desc())
        .limit(min(limit, SHOWN))
    )
    return Failures(
        total=sum(g.count for g in groups),
        groups=groups,
        jobs=[_view(job, record) for job, record in newest],
    )


async def retry_failures(
    session: AsyncSession,
    *,
    statuses: Sequence[RetryStatus] = tuple(STUCK),
    provider: str | None = None,
    reason: str | None = None,
    job_ids: Sequence[int] | None = None,
) -> Retried:
    """Requeue a group (provider, status, reason) or the jobs picked by id; answers how many
    were requeued and names (up to SHOWN of) them, so a page can follow them to synced."""
    picked = _jobs().where(SyncJob.status.in_(list(statuses)))
    if provider is not None:
        picked = picked.where(SyncJob.provider == provider)
    if reason is not None:
        picked = picked.where(SyncJob.last_error == reason)
    if job_ids is not None:
        picked = picked.where(SyncJob.id.in_(list(job_ids)))
    picked = picked.order_by(SyncJob.id).limit(SHOWN)
    if is_postgres(session):  # what is named is what gets requeued
        picked = picked.with_for_update(of=SyncJob)
    named = [_view(job, record) for job, record in await session.execute(picked)]
    requeued = await retry_jobs(
        session, list(statuses), provider=provider, reason=reason, job_ids=job_ids
    )
    for view in named:
        view.status = JobStatus.queued.value
    return Retried(requeued=requeued, jobs=named)
