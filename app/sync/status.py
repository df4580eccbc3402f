"""A record's standing at each provider: read from its jobs and links, and described as the
website sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import JobStatus, LinkStatus, ProviderLink, SyncJob
from app.records import SPECS, Kind
from app.sync.outbox import SETTLED
from app.sync.schemas import ProviderSyncStatus, SyncStatus, SyncStatusValue, status_model
from app.times import iso


@dataclass(frozen=True, slots=True)
class ProviderState:
    provider: str
    status: str  # pending / synced / failed / deleted
    crm_id: str | None
    last_synced_at: datetime | None
    last_error: str | None
    last_log_id: int | None
    settled: bool  # no job in flight


def queued_state(provider: str) -> ProviderState:
    """A record's state at a provider right after its first accept: queued, nothing known."""
    return ProviderState(provider, "pending", None, None, None, None, settled=False)


def provider_state(
    provider: str, content_hash: str, link: ProviderLink | None, job: SyncJob | None
) -> ProviderState:
    job_status = JobStatus(job.status) if job else None
    settled = job_status is None or job_status in SETTLED
    if job_status in (JobStatus.failed, JobStatus.dead):
        status = LinkStatus.failed
    elif settled and link is not None and link.status == LinkStatus.deleted:
        status = LinkStatus.deleted
    elif (
        settled
        and link is not None
        and link.status == LinkStatus.synced
        and link.confirmed_hash == content_hash
    ):
        status = LinkStatus.synced
    else:
        status = LinkStatus.pending
    error = (job.last_error if job else None) or (link.last_error if link else None)
    return ProviderState(
        provider=provider,
        status=status.value,
        crm_id=link.crm_id if link else None,
        last_synced_at=link.last_synced_at if link else None,
        last_error=error if status not in (LinkStatus.synced, LinkStatus.deleted) else None,
        last_log_id=link.last_log_id if link else None,
        settled=settled,
    )


async def record_states(
    session: AsyncSession, record_id: int, content_hash: str, providers: Sequence[str]
) -> list[ProviderState]:
    # Jobs before links: the worker commits a job's end and its link together, and under READ
    # COMMITTED each statement sees the latest commit. Read links first and a delivery landing
    # in between looks settled-but-unsynced (a false 202); read jobs first and the worst case is
    # "still running", which the caller simply waits out.
    jobs = {
        job.provider: job
        for job in await session.scalars(select(SyncJob).where(SyncJob.record_id == record_id))
    }
    links = {
        link.provider: link
        for link in await session.scalars(
            select(ProviderLink).where(ProviderLink.record_id == record_id)
        )
    }
    return [provider_state(p, content_hash, links.get(p), jobs.get(p)) for p in providers]


def status_url(kind: Kind, external_id: str) -> str:
    return f"/api/crm/sync/{kind.value}?{urlencode({SPECS[kind].id_field: external_id})}"


def overall(states: Sequence[ProviderState]) -> SyncStatusValue:
    if any(s.status == "failed" for s in states):
        return "failed"
    if all(s.status == "synced" for s in states):
        return "synced"
    if all(s.status == "deleted" for s in states):
        return "deleted"
    return "pending"


def describe(kind: Kind, external_id: str, states: Sequence[ProviderState]) -> SyncStatus:
    """The status view: the first provider's CRM id is the record's `crmId`."""
    primary = states[0]
    failed = next((s for s in states if s.status == "failed"), None)
    shown = failed or primary
    return status_model(kind).model_validate(
        {
            SPECS[kind].id_field: external_id,
            "crmId": primary.crm_id,
            "syncStatus": overall(states),
            "lastSyncedAt": iso(primary.last_synced_at),
            "lastError": (
                shown.last_error if failed or primary.status not in ("synced", "deleted") else None
            ),
            "providers": {
                s.provider: ProviderSyncStatus(
                    crmId=s.crm_id,
                    status=s.status,
                    lastSyncedAt=iso(s.last_synced_at),
                    lastError=s.last_error,
                )
                for s in states
            },
        }
    )
