"""Per-provider health of the pipeline: connected, last sync, queue depth, failures."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from app.deps import Services
from app.models import JobStatus, ProviderLink, SyncJob
from app.providers import Provider
from app.pull.service import last_pulls


async def _connected(provider: Provider) -> bool:
    try:
        async with asyncio.timeout(3):
            return await provider.check()
    except Exception:  # unreachable or misconfigured reads as not connected
        return False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


async def provider_status(services: Services) -> dict[str, Any]:
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
    connected = await asyncio.gather(*(_connected(services.providers[n]) for n in names))
    return {
        "providers": {
            name: {
                "connected": ok,
                "lastSyncedAt": _iso(last.get(name)),
                "lastPushAt": _iso(last.get(name)),
                "lastPullAt": pulls[name]["at"] if name in pulls else None,
                "lastPull": pulls.get(name),
                "queueDepth": jobs[name].depth if name in jobs else 0,
                "failures": jobs[name].failures if name in jobs else 0,
            }
            for name, ok in zip(names, connected, strict=True)
        }
    }
