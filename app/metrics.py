"""Prometheus metrics: what the workers did (counted as it happens) and the queue (read on scrape).

Counters and histograms live in this process's default registry, so adapters add theirs beside
them. Queue depth and oldest job age are read from the database when /metrics is scraped: they
are database-wide figures, the same from every replica.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import BreakerState, JobStatus, ProviderBreaker, SyncJob

JOBS = Counter(
    "crm_sync_jobs",
    "Jobs judged by the workers, by provider and outcome "
    "(success, skipped, waiting, retry, failed, dead).",
    ["provider", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "crm_sync_delivery_seconds",
    "Time one provider call took (a batch of one kind), by provider and record kind.",
    ["provider", "kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PROVIDER_ERRORS = Counter(
    "crm_sync_provider_errors",
    "Records a provider failed, by provider and failure kind "
    "(transient, timeout, rate_limited, rejected, unauthorized).",
    ["provider", "error"],
)
RATE_LIMIT_WAIT = Counter(
    "crm_sync_rate_limit_wait_seconds",
    "Seconds spent waiting for a provider's rate limit before calling it.",
    ["provider"],
)
QUEUE_DEPTH = Gauge(
    "crm_sync_queue_depth",
    "Jobs not yet settled, by provider and status (queued, running, waiting); database-wide.",
    ["provider", "status"],
)
UNSETTLED = Gauge(
    "crm_sync_failed_jobs",
    "Jobs that need someone (failed: rejected; dead: failing past the retry horizon), "
    "by provider; database-wide.",
    ["provider", "status"],
)
OLDEST_AGE = Gauge(
    "crm_sync_oldest_job_age_seconds",
    "How long the oldest due job has been waiting to be delivered, by provider; database-wide.",
    ["provider"],
)

BREAKER = Gauge(
    "crm_sync_breaker_state",
    "Each provider's circuit breaker: 1 for its current state (closed, open, half_open), else 0; "
    "database-wide.",
    ["provider", "state"],
)

_QUEUED = (JobStatus.queued, JobStatus.running, JobStatus.waiting)
_STUCK = (JobStatus.failed, JobStatus.dead)


def wait_for_rate_limit(provider: str, seconds: float) -> None:
    """For adapters: count time spent sleeping until the provider's rate limit allows a call."""
    if seconds > 0:
        RATE_LIMIT_WAIT.labels(provider).inc(seconds)


def observe_call(provider: str, kind: str, seconds: float, errors: Iterable[str | None]) -> None:
    """One provider call: its duration, and the failure kind of each record that failed."""
    DELIVERY_SECONDS.labels(provider, kind).observe(seconds)
    for error, n in Tally(e for e in errors if e is not None).items():
        PROVIDER_ERRORS.labels(provider, error).inc(n)


def _outcome(job_status: str, log_status: str | None) -> str:
    if job_status == JobStatus.done:
        return "skipped" if log_status == "skipped" else "success"
    if job_status == JobStatus.queued:
        return "retry"
    return job_status  # waiting, failed, dead


def count_jobs(provider: str, verdicts: Iterable[tuple[str, str | None]]) -> None:
    """The worker's verdicts for one batch: (job status, sync-log status) per job."""
    for outcome, n in Tally(_outcome(s, log) for s, log in verdicts).items():
        JOBS.labels(provider, outcome).inc(n)


@dataclass(frozen=True, slots=True)
class QueueFigure:
    """Jobs of one provider in one status, and the earliest `run_after` among them."""

    count: int
    oldest_due: datetime | None


async def queue_figures(
    session: AsyncSession,
) -> dict[tuple[str, str], QueueFigure]:
    """Unsettled and stuck jobs by (provider, status), from one grouped query (index on status):
    what the queue gauges and the dashboard's overview both show."""
    rows = await session.execute(
        select(SyncJob.provider, SyncJob.status, func.count(), func.min(SyncJob.run_after))
        .where(SyncJob.status.in_([s.value for s in (*_QUEUED, *_STUCK)]))
        .group_by(SyncJob.provider, SyncJob.status)
    )
    return {(p, s): QueueFigure(int(n), oldest) for p, s, n, oldest in rows}


def oldest_due_age(
    figures: dict[tuple[str, str], QueueFigure], provider: str, now: datetime
) -> float:
    """Seconds the oldest due queued job of `provider` has waited (0 when none is due)."""
    found = figures.get((provider, JobStatus.queued.value))
    if found is None or found.oldest_due is None:
        return 0.0
    return max((now - found.oldest_due).total_seconds(), 0.0)


def rate_limit_waited(provider: str) -> float:
    """Seconds this process has waited for `provider`'s rate limit since it started."""
    value = REGISTRY.get_sample_value(
        "crm_sync_rate_limit_wait_seconds_total", {"provider": provider}
    )
    return float(value or 0.0)


async def read_queue(session: AsyncSession, providers: Sequence[str]) -> None:
    """Set the queue gauges from one grouped query over unsettled jobs (index on status), and
    the breaker gauges from the breaker rows."""
    now = utcnow()
    states = dict(
        (
            await session.execute(
                select(ProviderBreaker.provider, ProviderBreaker.state).where(
                    ProviderBreaker.provider.in_(list(providers))
                )
            )
        ).all()
    )
    for provider in providers:
        current = states.get(provider, BreakerState.closed.value)
        for state in BreakerState:
            BREAKER.labels(provider, state.value).set(1 if state == current else 0)
    found = await queue_figures(session)
    for provider in dict.fromkeys([*providers, *(p for p, _ in found)]):
        for status in _QUEUED:
            figure = found.get((provider, status.value))
            QUEUE_DEPTH.labels(provider, status.value).set(figure.count if figure else 0)
        for status in _STUCK:
            figure = found.get((provider, status.value))
            UNSETTLED.labels(provider, status.value).set(figure.count if figure else 0)
        OLDEST_AGE.labels(provider).set(oldest_due_age(found, provider, now))
