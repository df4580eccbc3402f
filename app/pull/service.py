"""Running pulls: incremental (cursor minus overlap, cursor saved with each committed page),
by id (webhooks), on demand or once per scheduled period however many workers run."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import dialect_insert, utcnow
from app.errors import AppError, InvalidInput, NotFound
from app.providers.base import FailureKind, Provider, ProviderError
from app.providers.hubspot.provider import HubSpotProvider
from app.pull.hubspot import HubSpotContacts
from app.pull.merge import Merger, MergeResult, Strategy
from app.pull.models import PullRun
from app.pull.pages import (
    ANALYZE_AFTER_PAGES,
    ahead,
    cursor_of,
    merge_page,
    unreachable,
)
from app.runtime import Poller
from app.settings import Settings
from app.times import iso

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ContactSource(Protocol):
    provider_name: str
    requests: int

    def changed_since(self, since: datetime) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def read(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...


class PullFailed(AppError):
    """The CRM refused or failed the pull: 502, with its reason."""

    status_code = 502


def source_for(providers: dict[str, Provider], name: str, settings: Settings) -> ContactSource:
    """The pull source of a configured provider (only HubSpot can be pulled from): it reads
    through the same HubSpotClient the push uses, so both share one rate limit."""
    if name != "hubspot":
        raise InvalidInput("provider", f"{name!r} cannot be pulled from; only 'hubspot' can")
    provider = providers.get(name)
    if not isinstance(provider, HubSpotProvider):
        raise NotFound("hubspot is not configured here (CRM_PROVIDERS, HUBSPOT_ACCESS_TOKEN)")
    return HubSpotContacts(
        provider.client, settings.pull.page_size, settings.pull.rate_limit_wait_seconds
    )


@dataclass
class PullOutcome:
    run_id: int
    result: MergeResult
    requests: int
    seconds: float
    rate_limited: int = 0  # 429s met and waited out
    stopped_by: str | None = None  # why a paused pull stopped early (its pages are kept)

    def view(self) -> dict[str, Any]:
        return {
            "success": True,
            "runId": self.run_id,
            **self.result.view(),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rateLimited": self.rate_limited,
            "complete": self.stopped_by is None,
            "stoppedBy": self.stopped_by,
        }


async def start_run(
    sessions: async_sessionmaker[AsyncSession],
    provider: str,
    trigger: str,
    strategy: Strategy,
    period: str | None = None,
) -> int | None:
    """A run row; for a scheduled period only the first caller gets one (None for the rest)."""
    async with sessions() as session, session.begin():
        stmt = dialect_insert(session)(PullRun).values(
            provider=provider,
            trigger=trigger,
            strategy=strategy.value,
            period=period,
            status="running",
            started_at=utcnow(),
        )
        if period is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["provider", "period"])
        run_id = await session.scalar(stmt.returning(PullRun.id))
        return int(run_id) if run_id is not None else None


async def _finish(
    sessions: async_sessionmaker[AsyncSession],
    run_id: int,
    result: MergeResult,
    requests: int,
    error: str | None = None,
    status: str | None = None,
) -> None:
    async with sessions() as session, session.begin():
        run = await session.get(PullRun, run_id)
        if run is None:
            return
        run.status = status or ("failed" if error else "done")
        run.error = error
        run.fetched, run.requests = result.fetched, requests
        run.created, run.updated, run.skipped = result.created, result.updated, result.skipped
        run.conflicts = len(result.conflicts)
        run.finished_at = utcnow()


async def pull(
    sessions: async_sessionmaker[AsyncSession],
    source: ContactSource,
    settings: Settings,
    *,
    strategy: Strategy,
    trigger: str,
    run_id: int | None = None,
) -> PullOutcome:
    """Pull what changed since the cursor. Each page is merged and the cursor advanced in one
    transaction, so a crash mid-pull resumes from the last committed page; the next page is
    fetched while one is merged. `preview` runs the same merge in one transaction that is
    rolled back: exact counts, nothing changed.

    A 429 waits and the pull goes on (the source sends the request again); one that would wait
    longer than PULL_RATE_LIMIT_WAIT_SECONDS (the daily budget spent) ends the run `paused`,
    its pages kept. Raises PullFailed (502) when HubSpot fails the pull otherwise, or anything
    else stops it; the run's error then names HubSpot's reason or the kind of fault, never a
    statement or a contact's data."""
    provider = source.provider_name
    if run_id is None:
        run_id = await start_run(sessions, provider, trigger, strategy)
        assert run_id is not None
    merger = Merger(provider, strategy, settings.phone_default_region)
    began, requests_before = time.monotonic(), source.requests
    limited_before = getattr(source, "rate_limited", 0)
    stopped_by: str | None = None

    def spent() -> int:
        return source.requests - requests_before

    try:
        async with sessions() as session:
            cursor = await cursor_of(session, provider)
        since = cursor - timedelta(seconds=settings.pull.overlap_seconds) if cursor else EPOCH
        if strategy is Strategy.preview:
            async with sessions() as session:
                await session.begin()
                try:
                    async for page in source.changed_since(since):
                        await merger.merge(session, page)
                finally:
                    await session.rollback()
        else:
            merged = 0
            async for page in ahead(source.changed_since(since)):
                merged += 1
                await merge_page(
                    sessions, merger, provider, page, analyze=merged in ANALYZE_AFTER_PAGES
                )
    except ProviderError as exc:
        if exc.kind is FailureKind.rate_limited:
            stopped_by = f"{exc} (the next pull resumes from the cursor)"
            await _finish(sessions, run_id, merger.result, spent(), stopped_by, "paused")
        else:
            await _finish(sessions, run_id, merger.result, spent(), str(exc))
            raise PullFailed(f"pull from {provider} failed: {exc}", runId=run_id) from None
    except Exception as exc:
        if isinstance(exc, DBAPIError) and unreachable(exc):
            raise  # the database is down: the API's outage answer (503)
        log.exception("pull from %s stopped", provider)
        said = f"internal error ({type(exc).__name__}); the pages before it are kept"
        await asyncio.shield(_finish(sessions, run_id, merger.result, spent(), said))
        raise PullFailed(f"pull from {provider} stopped: {said}", runId=run_id) from None
    except BaseException as exc:
        said = f"stopped ({type(exc).__name__})"
        await asyncio.shield(_finish(sessions, run_id, merger.result, spent(), said))
        raise
    else:
        await _finish(sessions, run_id, merger.result, spent())
    return PullOutcome(
        run_id,
        merger.result,
        spent(),
        time.monotonic() - began,
        getattr(source, "rate_limited", 0) - limited_before,
        stopped_by,
    )


async def pull_ids(
    sessions: async_sessionmaker[AsyncSession],
    source: ContactSource,
    settings: Settings,
    ids: Sequence[str],
    *,
    trigger: str = "webhook",
) -> PullOutcome:
    """Read the named contacts and merge them (the cursor is left alone)."""
    strategy = Strategy(settings.pull.strategy)
    run_id = await start_run(sessions, source.provider_name, trigger, strategy)
    assert run_id is not None
    merger = Merger(source.provider_name, strategy, settings.phone_default_region)
    began, requests_before = time.monotonic(), source.requests
    try:
        contacts = await source.read(ids)
        await merge_page(sessions, merger, source.provider_name, contacts, advance=False)
    except Exception as exc:
        said = str(exc) if isinstance(exc, ProviderError) else f"internal ({type(exc).__name__})"
        await _finish(sessions, run_id, merger.result, source.requests - requests_before, said)
        raise
    requests = source.requests - requests_before
    await _finish(sessions, run_id, merger.result, requests)
    return PullOutcome(run_id, merger.result, requests, time.monotonic() - began)


def period_of(now: float, interval: float) -> str:
    """The scheduled period `now` falls in, named by its start (UTC, ISO)."""
    start = math.floor(now / interval) * interval
    return str(iso(datetime.fromtimestamp(start, UTC)))


class PullScheduler(Poller):
    """Run by every worker: each tick, claim this period's run for each pullable provider; the
    claim is a unique row, so however many workers tick, one pull runs per period."""

    label = "pull schedule"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: dict[str, Provider],
        settings: Settings,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.settings = settings
        self.sources: list[ContactSource] = []
        for name in providers:
            try:
                self.sources.append(source_for(providers, name, settings))
            except AppError:
                continue
        self.poll_interval = min(settings.pull.interval_seconds / 10, 15.0)
        self.runs = 0

    async def run_once(self) -> int:
        """Claim and run this period's pull of each source; 0 (a tick is never 'busy')."""
        if not self.settings.pull.enabled:
            return 0
        period = period_of(time.time(), self.settings.pull.interval_seconds)
        strategy = Strategy(self.settings.pull.strategy)
        for source in self.sources:
            run_id = await start_run(
                self.sessions, source.provider_name, "schedule", strategy, period
            )
            if run_id is None:
                continue  # another worker has this period
            self.runs += 1
            try:
                outcome = await pull(
                    self.sessions,
                    source,
                    self.settings,
                    strategy=strategy,
                    trigger="schedule",
                    run_id=run_id,
                )
                log.info("scheduled pull from %s: %s", source.provider_name, outcome.view())
            except AppError as exc:
                log.warning("scheduled pull from %s failed: %s", source.provider_name, exc)
        return 0

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        if not self.settings.pull.enabled or not self.sources:
            return
        await super().run(stop, drain=drain)


class LastPull(BaseModel):
    """The newest finished pull of a provider (previews left out)."""

    at: str | None = Field(description="when it finished (ISO 8601)")
    trigger: str = Field(description="schedule, api, cli or webhook")
    strategy: str
    status: str = Field(
        description="done, failed, or paused (a 429 asked for a longer wait than "
        "PULL_RATE_LIMIT_WAIT_SECONDS: its pages are kept); running, for a pull under way"
    )
    fetched: int
    created: int
    updated: int
    skipped: int
    conflicts: int
    error: str | None


class PullRunView(LastPull):
    """One pull, finished or running, previews included."""

    id: int
    provider: str
    startedAt: str | None


async def recent_pulls(session: AsyncSession, limit: int = 20) -> list[PullRunView]:
    """The newest pulls of every provider, newest first (the Leads page's "last pulls")."""
    runs = await session.scalars(select(PullRun).order_by(PullRun.id.desc()).limit(limit))
    return [
        PullRunView(
            id=run.id, provider=run.provider, startedAt=iso(run.started_at), **_outcome(run)
        )
        for run in runs
    ]


def _outcome(run: PullRun) -> dict[str, Any]:
    return {
        "at": iso(run.finished_at),
        "trigger": run.trigger,
        "strategy": run.strategy,
        "status": run.status,
        "fetched": run.fetched,
        "created": run.created,
        "updated": run.updated,
        "skipped": run.skipped,
        "conflicts": run.conflicts,
        "error": run.error,
    }


async def last_pulls(session: AsyncSession, providers: Sequence[str]) -> dict[str, LastPull]:
    """The newest finished, non-preview pull of each provider, for the status page."""
    out: dict[str, LastPull] = {}
    for name in providers:
        run = await session.scalar(
            select(PullRun)
            .where(
                PullRun.provider == name,
                PullRun.status != "running",
                PullRun.strategy != Strategy.preview.value,
            )
            .order_by(PullRun.id.desc())
            .limit(1)
        )
        if run is None:
            continue
        out[name] = LastPull(**_outcome(run))
    return out
