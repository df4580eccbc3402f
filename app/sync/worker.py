"""The delivery worker: claim due jobs, batch them per provider and kind, deliver, log each one."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Boolean, Table, and_, bindparam, case, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.db import UTCDateTime, dialect_insert, transaction, utcnow
from app.models import (
    JobStatus,
    LinkStatus,
    LogStatus,
    Operation,
    ProviderLink,
    Record,
    SyncJob,
    SyncLog,
)
from app.providers.base import (
    Action,
    Delivery,
    FailureKind,
    Outcome,
    Provider,
    ProviderError,
    redact,
)
from app.records import SPECS, Kind
from app.runtime import Notifier, Poller
from app.settings import DeliverySettings
from app.sync.deletes import children_pending, wake_parents

log = logging.getLogger(__name__)

WAIT_RECHECK = 30.0  # seconds before a job waiting for its parent looks again, as a safety net
HOLD_UNAUTHORIZED = 60.0  # seconds a provider with bad credentials is left alone
# Verdicts after which a job flagged `requeue` goes round again at once.
SETTLES = frozenset({JobStatus.done, JobStatus.failed, JobStatus.dead, JobStatus.waiting})
# Core table: per-row WHERE (lease token) in an executemany UPDATE is a Core feature.
JOBS = cast(Table, SyncJob.__table__)
# The sync log's Core table: its rows go in by executemany with one cached statement, not
# through the ORM's per-row bookkeeping.
LOGS = cast(Table, SyncLog.__table__)


def backoff(n: int, settings: DeliverySettings) -> float:
    """Exponential with jitter: base * 2^(n-1), capped, scaled by a random 50-100%."""
    delay = min(settings.backoff_max, settings.backoff_base * 2 ** max(n - 1, 0))
    return float(delay * random.uniform(0.5, 1.0))


def _log_verdicts(provider: str, results: Sequence[Result]) -> None:
    """One line per job that did not go through (and per success at DEBUG), carrying the job id
    and the record, so one record can be followed from its request to its sync-log rows."""
    debug = log.isEnabledFor(logging.DEBUG)
    for r in results:
        failed = r.log_status is LogStatus.failed
        if not failed and not debug:
            continue
        record = r.claimed.record
        log.log(
            logging.WARNING if failed else logging.DEBUG,
            "job %s %s %s/%s at %s: %s",
            r.claimed.job.id,
            r.status.value,
            record.kind,
            record.external_id,
            provider,
            r.error or (r.log_status.value if r.log_status else "waiting"),
            extra={
                "job_id": r.claimed.job.id,
                "provider": provider,
                "record": f"{record.kind}/{record.external_id}",
            },
        )


@dataclass(slots=True)
class Claimed:
    job: SyncJob
    record: Record


@dataclass(slots=True)
class Result:
    """One claimed job's fate, written with the others of its batch in one transaction."""

    claimed: Claimed
    status: JobStatus
    outcome: Outcome | None = None  # None: no call was made (skipped, or waiting)
    log_status: LogStatus | None = None
    action: Action = Action.upsert
    error: str | None = None
    run_after: datetime | None = None
    attempts: int = 0
    deferrals: int = 0
    duration_ms: float | None = None
    removed: bool = False  # a delete (or erasure) job's result


class Worker(Poller):
    """Delivers the outbox to this process's providers (any number of workers may run)."""

    label = "delivery worker"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: dict[str, Provider],
        settings: DeliverySettings,
        *,
        notifier: Notifier | None = None,
        name: str | None = None,
        concurrency: int = 4,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.providers = providers
        self.settings = settings
        self.poll_interval = settings.poll_interval
        self.notifier = notifier or Notifier()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._slots = asyncio.Semaphore(concurrency)
        self._next_reclaim = 0.0

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        """Deliver until `stop` is set; with `drain`, return once nothing is queued or running."""
        log.info("worker %s delivering to %s", self.name, ", ".join(self.providers))
        await super().run(stop, drain=drain)

    async def pending(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(SyncJob)
                .where(
                    SyncJob.provider.in_(list(self.providers)),
                    SyncJob.status.in_([JobStatus.queued.value, JobStatus.running.value]),
                )
            )
        return int(count or 0)

    async def run_once(self) -> int:
        """One round: reclaim lost leases, claim due jobs, deliver them. Returns jobs handled."""
        await self._reclaim_expired()
        claimed = await self._claim()
        if not claimed:
            return 0
        batches: dict[tuple[str, Kind, Operation], list[Claimed]] = defaultdict(list)
        for item in claimed:
            key = (item.job.provider, Kind(item.record.kind), Operation(item.job.operation))
            batches[key].append(item)
        tasks = []
        for (provider_name, kind, operation), items in batches.items():
            provider = self.providers[provider_name]
            for start in range(0, len(items), provider.batch_size):
                chunk = items[start : start + provider.batch_size]
                if operation is Operation.upsert:
                    tasks.append(self._deliver_guarded(provider, kind, chunk))
                else:
                    tasks.append(self._deliver_guarded(provider, kind, chunk, operation))
        await asyncio.gather(*tasks)
        return len(claimed)

    # -- claiming -------------------------------------------------------------------------

    async def _claim(self) -> list[Claimed]:
        now = utcnow()
        token = secrets.token_hex(8)
        async with transaction(self.sessions) as session:
            ids: list[int] = []
            # One status at a time: `status = x ORDER BY run_after` walks the (status, run_after)
            # index and stops after a batch, where `status IN (...)` sorted every due job on
            # each claim (quadratic over a 100,000-job bulk). Queued first; waiting jobs are
            # rechecks that a parent's delivery also wakes directly.
            for status in (JobStatus.queued, JobStatus.waiting):
                room = self.settings.claim_batch - len(ids)
                if room <= 0:
                    break
                due = (
                    select(SyncJob.id)
                    .where(
                        SyncJob.status == status.value,
                        SyncJob.run_after <= now,
                        SyncJob.provider.in_(list(self.providers)),
                    )
                    .order_by(SyncJob.run_after, SyncJob.id)
                    .limit(room)
                    .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers
                )
                ids += await session.scalars(
                    update(SyncJob)
                    .where(SyncJob.id.in_(due.scalar_subquery()))
                    .values(
                        status=JobStatus.running.value,
                        lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                        lease_token=token,
                        requeue=False,
                        updated_at=now,
                    )
                    .returning(SyncJob.id)
                    .execution_options(synchronize_session=False)
                )
            if not ids:
                return []
            rows = await session.execute(
                select(SyncJob, Record)
                .join(Record, Record.id == SyncJob.record_id)
                .where(SyncJob.id.in_(ids))
                .order_by(SyncJob.id)
            )
            return [Claimed(job, record) for job, record in rows]

    async def _reclaim_expired(self) -> None:
        """A worker that died loses its lease; its jobs go back to the queue."""
        if time.monotonic() < self._next_reclaim:
            return
        self._next_reclaim = time.monotonic() + self.settings.lease_seconds / 4
        now = utcnow()
        async with transaction(self.sessions) as session:
            result = await session.execute(
                update(SyncJob)
                .where(SyncJob.status == JobStatus.running.value, SyncJob.lease_until < now)
                .values(status=JobStatus.queued.value, lease_token=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        if result.rowcount:  # type: ignore[attr-defined]
            log.warning("reclaimed %d jobs whose lease expired", result.rowcount)  # type: ignore[attr-defined]

    # -- delivering -----------------------------------------------------------------------

    async def _deliver_guarded(
        self,
        provider: Provider,
        kind: Kind,
        items: list[Claimed],
        operation: Operation = Operation.upsert,
    ) -> None:
        async with self._slots:
            try:
                if operation is Operation.upsert:
                    await self._deliver(provider, kind, items)
                else:
                    await self._remove(provider, kind, items, operation)
            except Exception:
                # Leave the jobs leased: they return to the queue when the lease runs out.
                log.exception("delivery of %d %s to %s failed", len(items), kind, provider.name)

    async def _deliver(self, provider: Provider, kind: Kind, items: list[Claimed]) -> None:
        links, parent_ids = await self._lookup(provider.name, items)
        results: list[Result] = []
        to_send: list[tuple[Claimed, Delivery]] = []
        spec = SPECS[kind]
        for item in items:
            job, record = item.job, item.record
            link = links.get(record.id)
            if kind not in provider.kinds:
                results.append(self._skip(item, f"{provider.name} does not take {kind} records"))
                continue
            if (
                not job.force
                and link is not None
                and link.status == LinkStatus.synced
                and link.confirmed_hash == record.content_hash
            ):
                results.append(self._skip(item, "unchanged since the last confirmed sync"))
                continue
            parent_crm_id = None
            if record.parent_kind and record.parent_id:
                parent_crm_id = parent_ids.get((record.parent_kind, record.parent_id))
                if parent_crm_id is None:
                    results.append(self._wait(item, spec.parent_kind, record.parent_id, provider))
                    continue
            to_send.append(
                (
                    item,
                    Delivery(
                        job_id=job.id,
                        kind=kind,
                        record_id=record.external_id,
                        data=record.data,
                        # A record deleted at this provider and now back is created anew.
                        crm_id=link.crm_id if link and link.status != LinkStatus.deleted else None,
                        parent_crm_id=parent_crm_id,
                        idempotency_key=f"{provider.name}-{job.id}-{record.content_hash[:16]}",
                    ),
                )
            )
        if to_send:
            started = time.perf_counter()
            outcomes = await self._call(provider, kind, [d for _, d in to_send])
            elapsed = time.perf_counter() - started
            errors = (o.error.kind if o.error else None for o in outcomes)
            metrics.observe_call(provider.name, kind.value, elapsed, errors)
            per_record_ms = elapsed * 1000 / len(to_send)
            for (item, _), outcome in zip(to_send, outcomes, strict=True):
                result = self._judge(item, outcome)
                result.duration_ms = per_record_ms
                results.append(result)
        await self._write(provider.name, kind, results)
        self.notifier.notify()
        metrics.count_jobs(
            provider.name,
            [(r.status, r.log_status.value if r.log_status else None) for r in results],
        )
        _log_verdicts(provider.name, results)

    async def _remove(
        self, provider: Provider, kind: Kind, items: list[Claimed], operation: Operation
    ) -> None:
        """Delete (or erase) a batch: children first (a record whose children's deletes are
        still to come waits for them); nothing to call for a record this provider never got or
        already deleted; the link records the delete once the provider confirmed it."""
        links, parent_ids = await self._lookup(provider.name, items)
        async with self.sessions() as session:
            blocked = await children_pending(
                session, provider.name, ((i.record.kind, i.record.external_id) for i in items)
            )
        results: list[Result] = []
        to_send: list[tuple[Claimed, Delivery]] = []
        for item in items:
            job, record = item.job, item.record
            link = links.get(record.id)
            if (record.kind, record.external_id) in blocked:
                results.append(self._wait_children(item, provider))
                continue
            if kind not in provider.kinds or link is None or link.crm_id is None:
                results.append(self._gone(item, f"never created at {provider.name}"))
                continue
            if link.status == LinkStatus.deleted:
                results.append(self._gone(item, f"already deleted at {provider.name}"))
                continue
            parent = (record.parent_kind, record.parent_id) if record.parent_id else None
            delivery = Delivery(
                job_id=job.id,
                kind=kind,
                record_id=record.external_id,
                data=record.data,
                crm_id=link.crm_id,
                parent_crm_id=parent_ids.get(parent) if parent else None,  # type: ignore[arg-type]
                # Per CRM object: a record deleted, sent again and deleted again is a new delete.
                idempotency_key=f"{provider.name}-{job.id}-{operation.value}-{link.crm_id}",
                operation=operation,
            )
            to_send.append((item, delivery))
        if to_send:
            started = time.perf_counter()
            outcomes = await self._call(provider, kind, [d for _, d in to_send], remove=True)
            elapsed = time.perf_counter() - started
            errors = (o.error.kind if o.error else None for o in outcomes)
            metrics.observe_call(provider.name, kind.value, elapsed, errors)
            for (item, _), outcome in zip(to_send, outcomes, strict=True):
                outcome.action = Action.delete
                result = self._judge(item, outcome)
                result.duration_ms = elapsed * 1000 / len(to_send)
                result.removed = True
                results.append(result)
        await self._write(provider.name, kind, results)
        self.notifier.notify()
        metrics.count_jobs(
            provider.name,
            [(r.status, r.log_status.value if r.log_status else None) for r in results],
        )
        _log_verdicts(provider.name, results)

    async def _lookup(
        self, provider: str, items: Sequence[Claimed]
    ) -> tuple[dict[int, ProviderLink], dict[tuple[str, str], str]]:
        """This provider's links for the batch, and its CRM ids for the batch's parents."""
        record_ids = [i.record.id for i in items]
        parents = {(i.record.parent_kind, i.record.parent_id) for i in items if i.record.parent_id}
        async with self.sessions() as session:
            # By record id alone, so the primary key is the only index that fits: with the
            # provider in the WHERE, stale statistics during a bulk made PostgreSQL scan every
            # link of the provider through (provider, status) for each batch.
            links = {
                link.record_id: link
                for link in await session.scalars(
                    select(ProviderLink).where(ProviderLink.record_id.in_(record_ids))
                )
                if link.provider == provider
            }
            parent_ids: dict[tuple[str, str], str] = {}
            if parents:
                rows = await session.execute(
                    select(Record.kind, Record.external_id, ProviderLink.crm_id)
                    .join(ProviderLink, ProviderLink.record_id == Record.id)
                    .where(
                        ProviderLink.provider == provider,
                        ProviderLink.crm_id.is_not(None),
                        # A deleted parent is no parent: its children wait until it is back.
                        ProviderLink.status != LinkStatus.deleted.value,
                        tuple_(Record.kind, Record.external_id).in_(list(parents)),
                    )
                )
                parent_ids = {(k, e): c for k, e, c in rows if c}
        return links, parent_ids

    async def _call(
        self, provider: Provider, kind: Kind, deliveries: list[Delivery], *, remove: bool = False
    ) -> list[Outcome]:
        """The provider call; a whole-batch failure becomes the same failure for each record."""
        try:
            async with asyncio.timeout(self.settings.provider_timeout):
                call = provider.delete if remove else provider.deliver
                outcomes = await call(kind, deliveries)
            if len(outcomes) != len(deliveries):
                raise ProviderError(
                    FailureKind.transient,
                    f"{provider.name} answered {len(outcomes)} outcomes for {len(deliveries)}",
                )
            return outcomes
        except ProviderError as exc:
            return [Outcome.failed(exc) for _ in deliveries]
        except TimeoutError:
            error = ProviderError(
                FailureKind.timeout,
                f"{provider.name}: no answer in {self.settings.provider_timeout}s",
            )
            return [Outcome.failed(error) for _ in deliveries]
        except Exception as exc:  # an adapter bug must not lose the jobs or kill the worker
            log.exception("provider %s raised", provider.name)
            error = ProviderError(
                FailureKind.transient, f"{provider.name}: {type(exc).__name__}: {exc}"
            )
            return [Outcome.failed(error) for _ in deliveries]

    # -- judging ----------------------------------------------------------------------------

    def _skip(self, item: Claimed, reason: str) -> Result:
        return Result(
            item,
            JobStatus.done,
            log_status=LogStatus.skipped,
            error=reason,
            attempts=item.job.attempts,
            deferrals=item.job.deferrals,
        )

    def _gone(self, item: Claimed, reason: str) -> Result:
        """A delete with nothing to send: the record counts as deleted at this provider."""
        result = self._skip(item, reason)
        result.action, result.removed = Action.delete, True
        return result

    def _wait_children(self, item: Claimed, provider: Provider) -> Result:
        record = item.record
        result = self._wait(item, None, "", provider)
        result.error = (
            f"waiting for the deletes of {record.kind} {record.external_id}'s children at "
            f"{provider.name}"
        )
        return result

    def _wait(
        self, item: Claimed, parent_kind: Kind | None, parent_id: str, provider: Provider
    ) -> Result:
        deferrals = item.job.deferrals + 1
        delay = min(WAIT_RECHECK * deferrals, self.settings.backoff_max)
        return Result(
            item,
            JobStatus.waiting,
            error=f"waiting for {parent_kind} {parent_id} to be synced to {provider.name}",
            run_after=utcnow() + timedelta(seconds=delay),
            attempts=item.job.attempts,
            deferrals=deferrals,
        )

    def _judge(self, item: Claimed, outcome: Outcome) -> Result:
        job = item.job
        if outcome.error is None:
            return Result(
                item,
                JobStatus.done,
                outcome,
                LogStatus.success,
                outcome.action,
                attempts=job.attempts,
                deferrals=job.deferrals,
            )
        error = outcome.error
        now = utcnow()
        attempts, deferrals = job.attempts, job.deferrals
        if error.kind.permanent:
            return Result(
                item,
                JobStatus.failed,
                outcome,
                LogStatus.failed,
                outcome.action,
                error=error.message,
                attempts=attempts + 1,
                deferrals=deferrals,
            )
        if error.kind is FailureKind.transient:
            attempts += 1
            if attempts >= self.settings.max_attempts:
                return Result(
                    item,
                    JobStatus.dead,
                    outcome,
                    LogStatus.failed,
                    outcome.action,
                    error=f"{error.message} (gave up after {attempts} attempts)",
                    attempts=attempts,
                    deferrals=deferrals,
                )
            delay = backoff(attempts, self.settings)
        else:  # rate limited, timed out, unauthorised: not the record's fault
            deferrals += 1
            delay = backoff(deferrals, self.settings)
            if error.kind is FailureKind.unauthorized:
                delay = max(delay, HOLD_UNAUTHORIZED)
        delay = max(delay, error.retry_after or 0.0)
        return Result(
            item,
            JobStatus.queued,
            outcome,
            LogStatus.failed,
            outcome.action,
            error=error.message,
            run_after=now + timedelta(seconds=delay),
            attempts=attempts,
            deferrals=deferrals,
        )

    # -- writing ----------------------------------------------------------------------------

    async def _write(self, provider: str, kind: Kind, results: Sequence[Result]) -> None:
        if not results:
            return
        now = utcnow()
        async with transaction(self.sessions) as session:
            log_ids = await self._insert_logs(session, provider, kind, results, now)
            await self._upsert_links(session, provider, results, log_ids, now)
            await self._update_jobs(session, results, now)
            delivered = [r.claimed.record for r in results if r.log_status is LogStatus.success]
            removed = [
                r.claimed.record
                for r in results
                if r.removed and r.log_status in (LogStatus.success, LogStatus.skipped)
            ]
            if removed:
                await wake_parents(session, provider, removed, now)
            delivered = [r.claimed.record for r in results if r.log_status is LogStatus.success]
            delivered = [r for r in delivered if r not in removed]
            await self._wake_children(session, provider, kind, delivered, now)

    async def _insert_logs(
        self,
        session: AsyncSession,
        provider: str,
        kind: Kind,
        results: Sequence[Result],
        now: datetime,
    ) -> dict[int, int]:
        logged = [r for r in results if r.log_status is not None]
        if not logged:
            return {}
        rows = []
        for r in logged:
            o = r.outcome
            link_crm_id = o.crm_id if o else None
            rows.append(
                {
                    "created_at": now,
                    "provider": provider,
                    "entity_type": kind.value,
                    "entity_id": r.claimed.record.external_id,
                    "crm_id": link_crm_id,
                    "action": (r.action if o or r.removed else Action.update).value,
                    "status": r.log_status.value,  # type: ignore[union-attr]
                    "http_status": o.http_status if o else None,
                    "request": redact(o.request) if o else None,
                    "response": redact(o.response) if o else None,
                    "error": r.error,
                    "duration_ms": r.duration_ms,
                    "attempt": r.claimed.job.attempts + r.claimed.job.deferrals + 1,
                    "job_id": r.claimed.job.id,
                    "bulk_id": r.claimed.job.bulk_id,
                }
            )
        ids = await session.scalars(
            insert(LOGS).returning(LOGS.c.id, sort_by_parameter_order=True), rows
        )
        return {r.claimed.job.id: log_id for r, log_id in zip(logged, ids, strict=True)}

    async def _upsert_links(
        self,
        session: AsyncSession,
        provider: str,
        results: Sequence[Result],
        log_ids: dict[int, int],
        now: datetime,
    ) -> None:
        rows: list[dict[str, Any]] = []
        for r in results:
            gone = r.removed and r.log_status in (LogStatus.success, LogStatus.skipped)
            if r.outcome is None and not gone:
                continue
            record = r.claimed.record
            ok = r.log_status is LogStatus.success
            final = r.status in (JobStatus.failed, JobStatus.dead)
            if r.removed or r.outcome is None:
                rows.append(_removed_link(r, provider, gone, final, log_ids, now))
                continue
            rows.append(
                {
                    "record_id": record.id,
                    "provider": provider,
                    "crm_id": r.outcome.crm_id,
                    # "pending" here means: keep the link's status (a retry is still to come).
                    "status": (
                        LinkStatus.synced
                        if ok
                        else LinkStatus.failed
                        if final
                        else LinkStatus.pending
                    ).value,
                    "confirmed_hash": record.content_hash if ok else None,
                    "attempted_hash": record.content_hash,
                    "last_synced_at": now if ok else None,
                    "last_attempt_at": now,
                    "last_error": None if ok else r.error,
                    "last_log_id": log_ids.get(r.claimed.job.id),
                }
            )
        if not rows:
            return
        insert = dialect_insert(session)
        # executemany (insertmanyvalues), not .values(rows): one cached statement instead of
        # compiling a fresh multi-row VALUES clause for every batch.
        stmt = insert(cast(Table, ProviderLink.__table__))
        new, old = stmt.excluded, ProviderLink
        stmt = stmt.on_conflict_do_update(
            index_elements=["record_id", "provider"],
            set_={
                "crm_id": func.coalesce(new.crm_id, old.crm_id),
                "status": case(
                    (new.status == LinkStatus.pending.value, old.status), else_=new.status
                ),
                "confirmed_hash": func.coalesce(new.confirmed_hash, old.confirmed_hash),
                "attempted_hash": new.attempted_hash,
                "last_synced_at": func.coalesce(new.last_synced_at, old.last_synced_at),
                "last_attempt_at": new.last_attempt_at,
                "last_error": new.last_error,
                "last_log_id": func.coalesce(new.last_log_id, old.last_log_id),
            },
        )
        await session.execute(stmt, rows)

    async def _update_jobs(
        self, session: AsyncSession, results: Sequence[Result], now: datetime
    ) -> None:
        jobs = JOBS.c
        at, after = bindparam("now", type_=UTCDateTime()), bindparam("after", type_=UTCDateTime())
        # New content (or its parent's CRM id) arrived while this job ran: it goes round again.
        # (`settles` is bound per row: an expanding IN cannot be used with executemany.)
        again = and_(jobs.requeue, bindparam("settles", type_=Boolean()))
        stmt = (
            update(JOBS)
            .where(jobs.id == bindparam("jid"), jobs.lease_token == bindparam("token"))
            .values(
                status=case((again, JobStatus.queued.value), else_=bindparam("st")),
                run_after=case((again, at), else_=after),
                attempts=case((again, 0), else_=bindparam("att")),
                deferrals=case((again, 0), else_=bindparam("dfr")),
                requeue=False,
                force=case((again, jobs.force), else_=False),
                last_error=bindparam("err"),
                lease_token=None,
                lease_until=None,
                updated_at=at,
            )
        )
        params = [
            {
                "jid": r.claimed.job.id,
                "token": r.claimed.job.lease_token,
                "st": r.status.value,
                "settles": r.status in SETTLES,
                "after": r.run_after or now,
                "att": r.attempts,
                "dfr": r.deferrals,
                "err": None if r.status is JobStatus.done else r.error,
                "now": now,
            }
            # In job id order, as _wake_children locks: two workers' writes never wait in a circle.
            for r in sorted(results, key=lambda r: r.claimed.job.id)
        ]
        await session.execute(stmt, params)

    async def _wake_children(
        self,
        session: AsyncSession,
        provider: str,
        kind: Kind,
        delivered: Iterable[Record],
        now: datetime,
    ) -> None:
        """Children waiting for these records go now. A child being judged at this very moment
        is flagged to go round again, so its 'waiting' verdict cannot swallow this wake-up."""
        ids = [r.external_id for r in delivered]
        if not ids:
            return
        children = select(Record.id).where(
            Record.parent_kind == kind.value, Record.parent_id.in_(ids)
        )
        waiting = SyncJob.status == JobStatus.waiting.value
        running = SyncJob.status == JobStatus.running.value
        # Lock the children's jobs in id order first (another worker may be writing some of
        # them, in the same order), then update them.
        locked = list(
            await session.scalars(
                select(SyncJob.id)
                .where(
                    SyncJob.provider == provider,
                    SyncJob.status.in_([JobStatus.waiting.value, JobStatus.running.value]),
                    SyncJob.record_id.in_(children.scalar_subquery()),
                )
                .order_by(SyncJob.id)
                .with_for_update()
            )
        )
        if not locked:
            return
        await session.execute(
            update(SyncJob)
            .where(
                SyncJob.id.in_(locked),
                SyncJob.status.in_([JobStatus.waiting.value, JobStatus.running.value]),
            )
            .values(
                status=case((waiting, JobStatus.queued.value), else_=SyncJob.status),
                run_after=case((waiting, now), else_=SyncJob.run_after),
                requeue=case((running, True), else_=SyncJob.requeue),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


def _removed_link(
    r: Result, provider: str, gone: bool, final: bool, log_ids: dict[int, int], now: datetime
) -> dict[str, Any]:
    """A delete's link row: `deleted` once the provider confirmed it (or had nothing to delete),
    `failed` when it refused; the CRM id is kept (a record POSTed again is created anew)."""
    status = LinkStatus.deleted if gone else LinkStatus.failed if final else LinkStatus.pending
    return {
        "record_id": r.claimed.record.id,
        "provider": provider,
        "crm_id": None,
        "status": status.value,
        "confirmed_hash": None,
        "attempted_hash": r.claimed.record.content_hash,
        "last_synced_at": now if gone else None,
        "last_attempt_at": now,
        "last_error": None if gone else r.error,
        "last_log_id": log_ids.get(r.claimed.job.id),
    }
