"""GET /api/crm/status: each provider's connection, last push and pull, queue depth, failures."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from app.models import BreakerState, JobStatus, ProviderBreaker, ProviderLink, SyncJob
from app.providers.base import Provider
from app.pull.service import LastPull, last_pulls
from app.runtime import Services
from app.sync.breaker import breakers
from app.times import iso


class BreakerView(BaseModel):
    """The provider's circuit breaker: `open` holds its jobs until a probe at `retryAt` works."""

    state: BreakerState
    failures: int = Field(description="failing calls in a row")
    openedAt: str | None
    retryAt: str | None = Field(description="the next probe, while open")
    lastError: str | None


class ProviderHealth(BaseModel):
    connected: bool = Field(description="the CRM answered a cheap call with our credentials")
    breaker: BreakerView
    lastSyncedAt: str | None = Field(description="the newest confirmed delivery (ISO 8601)")
    lastPushAt: str | None = Field(description="the same as lastSyncedAt")
    lastPullAt: str | None = Field(description="when the last pull from this CRM finished")
    lastPull: LastPull | None
    queueDepth: int = Field(description="jobs queued, running or waiting for a parent")
    failures: int = Field(description="jobs failed (rejected) or dead (out of time)")


class CrmStatus(BaseModel):
    providers: dict[str, ProviderHealth]


def breaker_view(row: ProviderBreaker | None) -> BreakerView:
    if row is None:
        return BreakerView(
            state=BreakerState.closed, failures=0, openedAt=None, retryAt=None, lastError=None
        )
    return BreakerView(
        state=BreakerState(row.state),
        failures=row.failures,
        openedAt=iso(row.opened_at),
        retryAt=iso(row.retry_at) if row.state != BreakerState.closed else None,
        lastError=row.last_error,
    )


async def _connected(provider: Provider) -> bool:
    try:
        async with asyncio.timeout(3):
            return await provider.check()
    except Exception:  # unreachable or misconfigured reads as not connected
        return False


async def provider_status(services: Services) -> CrmStatus:
    names = list(services.providers)
    active = [JobStatus.queued.value, JobStatus.running.value, JobStatus.waiting.value]
    failing = [JobStatus.failed.value, JobStatus.dead.value]
    async with services.sessions() as session:
        jobs = {
            row.provider: row
            for row in await session.execute(
                select(
                    SyncJob.provider,
                    func.count().filter(SyncJob.status.in_(active)).label("depth"),
                    func.count().filter(SyncJob.status.in_(failing)).label("failures"),
                )
                .where(SyncJob.provider.in_(names))
                .group_by(SyncJob.provider)
            )
        }
        last = dict(
            (
                await session.execute(
                    select(ProviderLink.provider, func.max(ProviderLink.last_synced_at))
                    .where(ProviderLink.provider.in_(names))
                    .group_by(ProviderLink.provider)
                )
            ).all()
        )
        pulls = await last_pulls(session, names)
        held = await breakers(session, names)
    connected = await asyncio.gather(*(_connected(services.providers[n]) for n in names))
    return CrmStatus(
        providers={
            name: ProviderHealth(
                connected=ok,
                breaker=breaker_view(held.get(name)),
                lastSyncedAt=iso(last.get(name)),
                lastPushAt=iso(last.get(name)),
                lastPullAt=pulls[name].at if name in pulls else None,
                lastPull=pulls.get(name),
                queueDepth=jobs[name].depth if name in jobs else 0,
                failures=jobs[name].failures if name in jobs else 0,
            )
            for name, ok in zip(names, connected, strict=True)
        }
    )
