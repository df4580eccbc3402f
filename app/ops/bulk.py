"""Bulk resync: walk the records in keyset chunks, queue jobs set-based, wait for the workers, and
report created, updated, skipped and failed per kind.

A run is a `bulk_runs` row. Its runner holds a lease it renews as it goes; each chunk's jobs,
counts and resume point commit together, so a run whose process died is resumed by another
process (the sweeper in every API process) after the last chunk it committed, without counting
anything twice. Memory does not grow with the data set: a chunk's ids are the most held at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import is_postgres, transaction, utcnow
from app.errors import InvalidInput, NotFound
from app.inputs import storable_text
from app.models import JobStatus, LinkStatus, LogStatus, ProviderLink, Record, SyncJob, SyncLog
from app.ops.logs import text_param
from app.ops.models import ACTIVE_BULK, BulkRun, BulkStatus
from app.ops.schemas import BulkProgress, BulkView, KindResults
from app.providers.base import Action
from app.records import PLURALS, PUBLIC_KINDS, Kind
from app.runtime import Notifier
from app.settings import BulkSettings, Settings
from app.sync.outbox import ACTIVE, enqueue
from app.times import iso

log = logging.getLogger(__name__)

SyncType = Literal["owners", "properties", "enquiries", "bookings", "memberships", "all"]
PLURAL_OF = {kind: plural for plural, kind in PLURALS.items()}
ACTIVE_JOBS = [s.value for s in ACTIVE]
ANALYZE_FROM = 2000  # jobs queued before statistics are worth refreshing mid-run


class BulkRequest(BaseModel):
    """The body of POST /api/crm/sync/bulk."""

    model_config = ConfigDict(extra="forbid")

    syncType: SyncType = Field(
        description="owners, properties, enquiries, bookings, memberships or all"
    )
    onlyFailed: bool = Field(False, description="only records a provider failed or gave up on")
    force: bool = Field(False, description="send even what a provider already confirmed")
    provider: Annotated[str, AfterValidator(storable_text)] | None = Field(
        None, description="one configured provider (default: all)"
    )


class LeaseLost(Exception):
    """Another process took the run over (this one stalled past its lease)."""


def _queued(run: BulkRun) -> int:
    return sum(int(c.get("queued", 0)) for c in run.counts.values())


def kinds_of(sync_type: str) -> list[Kind]:
    # "all" walks parents first, so children rarely wait for a parent's CRM id.
    return list(PUBLIC_KINDS) if sync_type == "all" else [PLURALS[sync_type]]


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def create_run(
    session: AsyncSession,
    settings: Settings,
    request: BulkRequest,
    *,
    runner: str,
    requested_by: str | None = None,
) -> BulkRun:
    """The run's row, already leased to `runner` so no other process's sweeper takes it."""
    configured = settings.providers
    if request.provider is not None and request.provider not in configured:
        raise InvalidInput(
            "provider",
            f"{request.provider!r} is not configured; configured: {', '.join(configured)}",
        )
    kinds = kinds_of(request.syncType)
    now = utcnow()
    run = BulkRun(
        id=f"bulk_{now:%Y%m%d%H%M%S}_{secrets.token_hex(4)}",
        status=BulkStatus.queued.value,
        sync_type=request.syncType,
        kinds=[k.value for k in kinds],
        providers=[request.provider] if request.provider else list(configured),
        only_failed=request.onlyFailed,
        force=request.force,
        requested_by=requested_by,
        cursor_kind=kinds[0].value,
        cursor_id=0,
        counts={k.value: {"queued": 0, "skipped": 0} for k in kinds},
        runner=runner,
        lease_until=now + timedelta(seconds=settings.bulk.lease_seconds),
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    await session.flush()
    return run


async def get_run(session: AsyncSession, bulk_id: str) -> BulkRun:
    text_param(bulk_id, "bulkId")
    run = await session.get(BulkRun, bulk_id)
    if run is None:
        raise NotFound(f"bulk run {bulk_id} is not known here")
    return run


async def count_candidates(session: AsyncSession, run: BulkRun, kind: Kind) -> int:
    """How many (record, provider) deliveries the run will consider for a kind: for a progress
    bar's total. An index-only count on (kind, id)."""
    stmt = (
        select(func.count())
        .select_from(Record)
        .where(Record.kind == kind.value, Record.deleted_at.is_(None))
    )
    if run.only_failed:
        failed = (
            select(func.count())
            .select_from(ProviderLink)
            .where(
                ProviderLink.provider.in_(run.providers),
                ProviderLink.status == LinkStatus.failed.value,
                ProviderLink.record_id.in_(
                    select(Record.id).where(Record.kind == kind.value, Record.deleted_at.is_(None))
                ),
            )
        )
        return int(await session.scalar(failed) or 0)
    return int(await session.scalar(stmt) or 0) * len(run.providers)


def _has_failed_link(providers: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(
        ProviderLink.record_id == Record.id,
        ProviderLink.provider.in_(list(providers)),
        ProviderLink.status == LinkStatus.failed.value,
    )


# -- tallying ---------------------------------------------------------------------------------


def _empty() -> dict[str, int]:
    return dict.fromkeys(
        ("total", "synced", "created", "updated", "failed", "skipped", "pending", "superseded"), 0
    )


async def tally(session: AsyncSession, run: BulkRun) -> dict[str, dict[str, int]]:
    """Per kind (plural, as the seed's results): counts per (record, provider) delivery.

    Each job the run queued is judged once, from its sync-log rows under this run and its state:
    - pending: not settled yet (queued, retrying, waiting for a parent);
    - failed: settled as failed or dead (even after an earlier success in this run);
    - synced: the CRM accepted it (a retry that then succeeded, or a delivery that went round
      again and was then skipped, counts once); created/updated split it by the CRM's answer;
    - skipped: unchanged since the provider confirmed it, found when queueing (no job at all) or
      by the worker (confirmed meanwhile);
    - superseded: queued by this run but taken over by a later bulk run before this one's
      delivery (counted there).
    total = synced + failed + skipped + pending + superseded.
    """
    results = {kind: _empty() for kind in run.kinds}
    for kind, counted in run.counts.items():
        results[kind]["skipped"] += int(counted.get("skipped", 0))
        results[kind]["total"] = int(counted.get("queued", 0)) + int(counted.get("skipped", 0))
    mine = and_(SyncJob.bulk_id == run.id, SyncJob.status.in_(ACTIVE_JOBS))
    pending = await session.execute(
        select(Record.kind, func.count())
        .select_from(SyncJob)
        .join(Record, Record.id == SyncJob.record_id)
        .where(mine)
        .group_by(Record.kind)
    )
    for kind, n in pending:
        if kind in results:
            results[kind]["pending"] += int(n)

    def seen(condition: ColumnElement[bool]) -> Any:
        return func.max(case((condition, 1), else_=0))

    ok = SyncLog.status == LogStatus.success.value
    per_job = (
        select(
            SyncLog.job_id,
            SyncLog.entity_type,
            seen(ok).label("ok"),
            seen(and_(ok, SyncLog.action == Action.create.value)).label("created"),
            seen(and_(ok, SyncLog.action == Action.update.value)).label("updated"),
            seen(SyncLog.status == LogStatus.failed.value).label("bad"),
        )
        .where(SyncLog.bulk_id == run.id)
        .group_by(SyncLog.job_id, SyncLog.entity_type)
        .subquery()
    )
    gave_up = [JobStatus.failed.value, JobStatus.dead.value]
    outcome = case(
        (SyncJob.status.in_(ACTIVE_JOBS), "pending"),  # counted above
        (SyncJob.status.in_(gave_up), "failed"),
        (per_job.c.ok == 1, "synced"),
        (per_job.c.bad == 1, "failed"),  # its job was since taken over
        else_="skipped",
    ).label("outcome")
    action = case(
        (and_(per_job.c.ok == 1, per_job.c.created == 1), "created"),
        (and_(per_job.c.ok == 1, per_job.c.updated == 1), "updated"),
        else_="",
    ).label("action")
    judged = await session.execute(
        select(per_job.c.entity_type, outcome, action, func.count())
        .select_from(per_job)
        .outerjoin(SyncJob, and_(SyncJob.id == per_job.c.job_id, SyncJob.bulk_id == run.id))
        .group_by(per_job.c.entity_type, outcome, action)
    )
    for kind, verdict, split, n in judged:
        if kind not in results or verdict == "pending":
            continue
        results[kind][verdict] += n
        if split:
            results[kind][split] += n
    for row in results.values():
        settled = row["synced"] + row["failed"] + row["skipped"] + row["pending"]
        row["superseded"] = max(row["total"] - settled, 0)
    return {PLURAL_OF[Kind(kind)]: row for kind, row in results.items()}


def describe(run: BulkRun, results: dict[str, dict[str, int]], *, orphans: int = 0) -> BulkView:
    """The run as the API answers it: never plain success when something failed. `orphans`:
    its pending deliveries that wait for a parent nothing will sync (see `orphaned_waits`)."""
    failed = sum(r["failed"] for r in results.values())
    pending = sum(r["pending"] for r in results.values())
    total = sum(r["total"] for r in results.values())
    status = BulkStatus(run.status)
    if status is BulkStatus.failed:
        message = f"Bulk sync failed: {run.error}"
    elif status is BulkStatus.completed:
        message = (
            "Bulk sync completed"
            if not failed
            else f"Bulk sync completed with {failed} failed "
            f"{'delivery' if failed == 1 else 'deliveries'}"
        )
    elif orphans and orphans == pending and status is BulkStatus.delivering:
        message = (
            f"Bulk sync waiting: {orphans} "
            f"{'delivery waits' if orphans == 1 else 'deliveries wait'} for a parent record "
            "that is not synced and not queued at that provider (sync or retry the parent)"
        )
    else:
        message = "Bulk sync in progress"
    return BulkView(
        success=status is not BulkStatus.failed and failed == 0,
        message=message,
        bulkId=run.id,
        status=status.value,
        syncType=run.sync_type,
        onlyFailed=run.only_failed,
        force=run.force,
        providers=run.providers,
        progress=BulkProgress(
            queueing=status in (BulkStatus.queued, BulkStatus.enqueueing),
            total=total,
            done=total - pending,
            pending=pending,
        ),
        waitingForParent=orphans,
        results={kind: KindResults(**row) for kind, row in results.items()},
        error=run.error,
        createdAt=iso(run.created_at),
        startedAt=iso(run.started_at),
        finishedAt=iso(run.finished_at),
        statusUrl=status_url(run.id),
    )


async def orphaned_waits(session: AsyncSession, bulk_id: str) -> tuple[int, int]:
    """(active jobs of the run, those of them waiting for a parent that nothing will sync): the
    parent has no CRM id at that provider and no queued, running or waiting job there (it was
    rejected, ran out of time, or was never sent). Only new input moves such a child."""
    parent = Record.__table__.alias("parent")
    parent_job = SyncJob.__table__.alias("parent_job")
    parent_link = ProviderLink.__table__.alias("parent_link")
    same_parent = and_(
        parent.c.kind == Record.parent_kind, parent.c.external_id == Record.parent_id
    )
    still_going = exists().where(
        same_parent,
        parent_job.c.record_id == parent.c.id,
        parent_job.c.provider == SyncJob.provider,
        parent_job.c.status.in_(ACTIVE_JOBS),
    )
    linked = exists().where(
        same_parent,
        parent_link.c.record_id == parent.c.id,
        parent_link.c.provider == SyncJob.provider,
        parent_link.c.crm_id.is_not(None),
    )
    hopeless = and_(SyncJob.status == JobStatus.waiting.value, ~still_going, ~linked)
    row = (
        await session.execute(
            select(func.count(), func.count().filter(hopeless))
            .select_from(SyncJob)
            .join(Record, Record.id == SyncJob.record_id)
            .where(SyncJob.bulk_id == bulk_id, SyncJob.status.in_(ACTIVE_JOBS))
        )
    ).one()
    return int(row[0]), int(row[1])


async def run_view(session: AsyncSession, bulk_id: str) -> BulkView:
    run = await get_run(session, bulk_id)
    results = run.results if run.results is not None else await tally(session, run)
    orphans = 0
    if run.status == BulkStatus.delivering.value:
        _, orphans = await orphaned_waits(session, bulk_id)
    return describe(run, results, orphans=orphans)


async def recent_runs(session: AsyncSession, limit: int = 20) -> list[BulkView]:
    """The newest bulk runs, newest first, each as GET /api/crm/sync/bulk/{bulkId} answers it
    (a run still going is tallied now; a finished one shows its frozen results)."""
    runs = await session.scalars(
        select(BulkRun).order_by(BulkRun.created_at.desc(), BulkRun.id.desc()).limit(limit)
    )
    return [
        describe(run, run.results if run.results is not None else await tally(session, run))
        for run in list(runs)
    ]


def status_url(bulk_id: str) -> str:
    return f"/api/crm/sync/bulk/{bulk_id}"


# -- running ----------------------------------------------------------------------------------


class BulkRunner:
    """Runs bulk runs to the end: queue every chunk, then wait until the workers settled them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: BulkSettings,
        *,
        kick: Callable[[], None] = lambda: None,
        notifier: Notifier | None = None,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.kick = kick  # wakes an in-process worker when jobs were queued
        self.notifier = notifier or Notifier()
        self.name = name or runner_name()

    async def run(self, bulk_id: str) -> bool:
        """Run (or resume) one run. False if another runner holds it."""
        run = await self._claim(bulk_id)
        if run is None:
            return False
        log.info("bulk %s: %s from %s:%s", run.id, run.status, run.cursor_kind, run.cursor_id)
        try:
            if run.status == BulkStatus.enqueueing:
                await self._enqueue_all(run)
            await self._settle(run)
        except LeaseLost:
            log.warning("bulk %s: lease lost to another runner; leaving it to them", bulk_id)
        except asyncio.CancelledError:
            with suppress(Exception):
                await asyncio.shield(self._release(bulk_id))
            raise
        except Exception as exc:
            log.exception("bulk %s failed", bulk_id)
            await self._finish(bulk_id, BulkStatus.failed, error=f"{type(exc).__name__}: {exc}")
        return True

    async def _claim(self, bulk_id: str) -> BulkRun | None:
        now = utcnow()
        async with transaction(self.sessions) as session:
            claimed = await session.execute(
                update(BulkRun)
                .where(
                    BulkRun.id == bulk_id,
                    BulkRun.status.in_([s.value for s in ACTIVE_BULK]),
                    or_(
                        BulkRun.runner.is_(None),
                        BulkRun.runner == self.name,
                        BulkRun.lease_until.is_(None),
                        BulkRun.lease_until < now,
                    ),
                )
                .values(
                    runner=self.name,
                    lease_until=self._lease(now),
                    status=case(
                        (BulkRun.status == BulkStatus.queued.value, BulkStatus.enqueueing.value),
                        else_=BulkRun.status,
                    ),
                    started_at=func.coalesce(BulkRun.started_at, now),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return None
            return await session.get(BulkRun, bulk_id, populate_existing=True)

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)

    async def _enqueue_all(self, run: BulkRun) -> None:
        kinds = [Kind(k) for k in run.kinds]
        index = kinds.index(Kind(run.cursor_kind)) if run.cursor_kind else len(kinds)
        after = run.cursor_id
        await self._refresh_statistics("provider_links", "sync_jobs")
        analysed_at = max(_queued(run), ANALYZE_FROM)
        while index < len(kinds):
            kind = kinds[index]
            async with transaction(self.sessions) as session:
                ids = await self._chunk(session, run, kind, after)
                if ids:
                    await self._enqueue_chunk(session, run, kind, ids)
                    after = ids[-1]
                    cursor_kind: str | None = kind.value
                else:
                    index, after = index + 1, 0
                    cursor_kind = kinds[index].value if index < len(kinds) else None
                values: dict[str, Any] = {
                    "cursor_kind": cursor_kind,
                    "cursor_id": after,
                    "counts": run.counts,
                }
                if cursor_kind is None:
                    values |= {"status": BulkStatus.delivering.value, "enqueued_at": utcnow()}
                await self._save(session, run.id, values)
            if ids:
                self.kick()
            if _queued(run) >= 2 * analysed_at:
                await self._refresh_statistics("sync_jobs")
                analysed_at = _queued(run)
        await self._refresh_statistics("sync_jobs")
        run.status = BulkStatus.delivering.value
        log.info("bulk %s: every job queued: %s", run.id, run.counts)

    async def _refresh_statistics(self, *tables: str) -> None:
        """ANALYZE the tables a bulk grows, as after any bulk load. Autovacuum does it a minute
        late at best (never, where it is off); meanwhile PostgreSQL plans the workers' claims
        for a table a thousandth of its size, and each claim sorts the whole queue."""
        async with self.sessions() as session:
            if not is_postgres(session):
                return
            try:
                async with session.begin():
                    await session.execute(text("SET LOCAL lock_timeout = '2s'"))
                    for table in tables:
                        await session.execute(text(f"ANALYZE {table}"))
            except Exception as exc:  # not the owner, or busy: plans stay as they are
                log.info("could not refresh statistics of %s: %s", ", ".join(tables), exc)

    async def _chunk(
        self, session: AsyncSession, run: BulkRun, kind: Kind, after: int
    ) -> list[int]:
        stmt = (
            select(Record.id)
            # A deleted record is never resurrected by a bulk: only a POST brings it back.
            .where(Record.kind == kind.value, Record.id > after, Record.deleted_at.is_(None))
            .order_by(Record.id)
            .limit(self.settings.chunk_size)
        )
        if run.only_failed:
            stmt = stmt.where(_has_failed_link(run.providers))
        return list(await session.scalars(stmt))

    async def _enqueue_chunk(
        self, session: AsyncSession, run: BulkRun, kind: Kind, ids: list[int]
    ) -> None:
        """One INSERT ... SELECT per provider over the chunk's ids; a record the provider
        already confirmed gets no job (unless `force`) and is counted skipped. The ids go as a
        list: a range subquery lets the planner pick a scan of every record for each chunk."""
        counted = dict(run.counts.get(kind.value, {"queued": 0, "skipped": 0}))
        for provider in run.providers:
            if run.only_failed:
                considered = await session.scalar(
                    select(func.count())
                    .select_from(ProviderLink)
                    .where(
                        ProviderLink.provider == provider,
                        ProviderLink.status == LinkStatus.failed.value,
                        ProviderLink.record_id.in_(ids),
                    )
                )
                size_here = int(considered or 0)
            else:
                size_here = len(ids)
            # An explicit resync from ops: content a CRM rejected is sent again too.
            queued = await enqueue(
                session,
                ids,
                [provider],
                force=run.force,
                bulk_id=run.id,
                only_failed=run.only_failed,
                retry_failed=True,
            )
            counted["queued"] += queued
            counted["skipped"] += max(size_here - queued, 0)
        run.counts = {**run.counts, kind.value: counted}

    async def _save(self, session: AsyncSession, bulk_id: str, values: dict[str, Any]) -> None:
        """Write progress, renewing the lease; fails (rolling the chunk back) if it was lost."""
        now = utcnow()
        saved = await session.execute(
            update(BulkRun)
            .where(BulkRun.id == bulk_id, BulkRun.runner == self.name)
            .values(**values, lease_until=self._lease(now), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not saved.rowcount:  # type: ignore[attr-defined]
            raise LeaseLost(bulk_id)

    async def _settle(self, run: BulkRun) -> None:
        """Wait until none of the run's jobs is queued, running or waiting; freeze the results."""
        renew_every = self.settings.lease_seconds / 4
        renewed = asyncio.get_running_loop().time()
        while True:
            async with self.sessions() as session:
                busy = await session.scalar(
                    select(SyncJob.id)
                    .where(SyncJob.bulk_id == run.id, SyncJob.status.in_(ACTIVE_JOBS))
                    .limit(1)
                )
            if busy is None:
                break
            if asyncio.get_running_loop().time() - renewed > renew_every:
                async with transaction(self.sessions) as session:
                    await self._save(session, run.id, {})
                renewed = asyncio.get_running_loop().time()
                if _queued(run) >= ANALYZE_FROM:  # the workers grow these as they deliver
                    await self._refresh_statistics("provider_links", "sync_log")
            await self.notifier.wait(self.settings.poll_interval)
        async with transaction(self.sessions) as session:
            fresh = await get_run(session, run.id)
            results = await tally(session, fresh)
            await self._save(
                session,
                run.id,
                {
                    "status": BulkStatus.completed.value,
                    "results": results,
                    "finished_at": utcnow(),
                    "runner": None,
                },
            )
        summary = {k: (r["synced"], r["failed"], r["skipped"]) for k, r in results.items()}
        log.info("bulk %s completed: (synced, failed, skipped) %s", run.id, summary)

    async def _finish(self, bulk_id: str, status: BulkStatus, *, error: str | None) -> None:
        now = utcnow()
        async with transaction(self.sessions) as session:
            await session.execute(
                update(BulkRun)
                .where(BulkRun.id == bulk_id, BulkRun.runner == self.name)
                .values(
                    status=status.value,
                    error=error,
                    finished_at=now,
                    updated_at=now,
                    runner=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )

    async def _release(self, bulk_id: str) -> None:
        """Stopping (shutdown): let the next process resume the run at once."""
        async with transaction(self.sessions) as session:
            await session.execute(
                update(BulkRun)
                .where(BulkRun.id == bulk_id, BulkRun.runner == self.name)
                .values(runner=None, lease_until=None, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )


class BulkRuns:
    """The bulk runs of one API process: started on request, and any run whose runner died
    (its lease ran out) picked up and resumed by a periodic sweep."""

    def __init__(self, runner: BulkRunner) -> None:
        self.runner = runner
        self.tasks: dict[str, asyncio.Task[bool]] = {}

    async def start(
        self, settings: Settings, request: BulkRequest, *, requested_by: str | None = None
    ) -> BulkRun:
        async with transaction(self.runner.sessions) as session:
            run = await create_run(
                session, settings, request, runner=self.runner.name, requested_by=requested_by
            )
        self._spawn(run.id)
        return run

    def _spawn(self, bulk_id: str) -> None:
        if bulk_id in self.tasks:
            return
        task = asyncio.create_task(self.runner.run(bulk_id), name=f"bulk-{bulk_id}")
        self.tasks[bulk_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(bulk_id, None))

    async def wait(self, bulk_id: str, seconds: float) -> None:
        """Until the run is over, or every delivery it still waits for waits on a parent that
        nothing will sync (see `orphaned_waits`), or `seconds` pass; works whichever process
        runs it."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            async with self.runner.sessions() as session:
                status = await session.scalar(select(BulkRun.status).where(BulkRun.id == bulk_id))
                if status not in [s.value for s in ACTIVE_BULK]:
                    return
                if status == BulkStatus.delivering.value:
                    active, orphans = await orphaned_waits(session, bulk_id)
                    if active and active == orphans:
                        return
            await self.runner.notifier.wait(min(self.runner.settings.poll_interval, 1.0))

    async def sweep(self) -> list[str]:
        """Resume runs nobody holds (their process died, or stopped and let go)."""
        now = utcnow()
        async with self.runner.sessions() as session:
            orphans = list(
                await session.scalars(
                    select(BulkRun.id).where(
                        BulkRun.status.in_([s.value for s in ACTIVE_BULK]),
                        or_(BulkRun.lease_until.is_(None), BulkRun.lease_until < now),
                    )
                )
            )
        for bulk_id in orphans:
            if bulk_id not in self.tasks:
                log.warning("bulk %s: its runner is gone; resuming it here", bulk_id)
                self._spawn(bulk_id)
        return orphans

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the database may be restarting; try again next time
                log.exception("bulk sweep failed")
            await asyncio.sleep(self.runner.settings.lease_seconds / 2)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[BulkRuns]:
        sweeper = asyncio.create_task(self._sweep_forever(), name="bulk-sweeper")
        try:
            yield self
        finally:
            sweeper.cancel()
            tasks = [sweeper, *self.tasks.values()]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
