"""What the delivery pipeline has been doing, per provider: deliveries per minute over the last
hour, synced / failed / dead over the last day, the oldest due job's age and rate-limit waits.
For GET /api/crm/sync/activity and the dashboard's overview."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import Integer, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import is_postgres, utcnow
from app.metrics import oldest_due_age, queue_figures, rate_limit_waited
from app.models import JobStatus, LogStatus, SyncJob, SyncLog
from app.times import iso

MINUTES = 60  # the per-minute series covers the last hour
DAY = timedelta(hours=24)


class ProviderActivity(BaseModel):
    """One provider's recent work. Counts come from the sync log and the outbox."""

    synced24h: int = Field(description="deliveries the CRM accepted in the last 24 h (sync log)")
    failed24h: int = Field(
        description="delivery attempts that failed in the last 24 h, retried ones included "
        "(sync log; the same count as /api/crm/stats failedLast24h)"
    )
    dead24h: int = Field(description="jobs that ran out of attempts in the last 24 h (outbox)")
    oldestDueAgeSeconds: float = Field(
        description="how long the oldest due queued job has waited (0: none due)"
    )
    rateLimitWaitSeconds: float = Field(
        description="time this process spent waiting for the provider's rate limit since it "
        "started (per process, as crm_sync_rate_limit_wait_seconds_total)"
    )
    deliveriesPerMinute: list[int] = Field(
        description="sync-log rows that called the CRM (success or failed), per minute, "
        "oldest first: the last entry is the current minute"
    )


class Activity(BaseModel):
    generatedAt: str = Field(description="the moment the figures are for (ISO 8601)")
    minutes: int = Field(description="length of each deliveriesPerMinute series")
    providers: dict[str, ProviderActivity]


def _minutes_ago(session: AsyncSession, now: datetime) -> object:
    """Whole minutes between a sync-log row and `now`, computed by the database."""
    if is_postgres(session):
        seconds = func.extract("epoch", literal(now) - SyncLog.created_at)
        return cast(func.floor(seconds / 60), Integer)
    # SQLite keeps naive UTC text; julianday() reads it as UTC.
    naive = now.replace(tzinfo=None).isoformat(sep=" ")
    return cast((func.julianday(naive) - func.julianday(SyncLog.created_at)) * 1440, Integer)


async def delivery_activity(
    session: AsyncSession, providers: Sequence[str], *, now: datetime | None = None
) -> Activity:
    """Figures for each of `providers` as of `now` (default: the current time)."""
    now = now or utcnow()
    names = list(providers)
    per_minute = {name: [0] * MINUTES for name in names}
    ago = _minutes_ago(session, now).label("ago")  # type: ignore[attr-defined]
    rows = await session.execute(
        select(SyncLog.provider, ago, func.count())
        .where(
            SyncLog.created_at > now - timedelta(minutes=MINUTES),
            SyncLog.created_at <= now,
            SyncLog.status.in_([LogStatus.success.value, LogStatus.failed.value]),
            SyncLog.provider.in_(names),
        )
        .group_by(SyncLog.provider, ago)
    )
    for provider, minutes_ago, n in rows:
        if 0 <= minutes_ago < MINUTES:
            per_minute[provider][MINUTES - 1 - int(minutes_ago)] += int(n)

    logged = {
        (provider, status): int(n)
        for provider, status, n in await session.execute(
            select(SyncLog.provider, SyncLog.status, func.count())
            .where(SyncLog.created_at > now - DAY, SyncLog.provider.in_(names))
            .group_by(SyncLog.provider, SyncLog.status)
        )
    }
    dead = dict(
        (
            await session.execute(
                select(SyncJob.provider, func.count())
                .where(
                    SyncJob.status == JobStatus.dead.value,
                    SyncJob.updated_at > now - DAY,
                    SyncJob.provider.in_(names),
                )
                .group_by(SyncJob.provider)
            )
        ).all()
    )
    queue = await queue_figures(session)
    return Activity(
        generatedAt=iso(now) or "",
        minutes=MINUTES,
        providers={
            name: ProviderActivity(
                synced24h=logged.get((name, LogStatus.success.value), 0),
                failed24h=logged.get((name, LogStatus.failed.value), 0),
                dead24h=int(dead.get(name, 0)),
                oldestDueAgeSeconds=round(oldest_due_age(queue, name, now), 3),
                rateLimitWaitSeconds=round(rate_limit_waited(name), 3),
                deliveriesPerMinute=per_minute[name],
            )
            for name in names
        },
    )
