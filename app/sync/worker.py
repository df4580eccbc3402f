"""The delivery worker: claim due jobs under a lease (renewed while they are delivered), batch
them per provider, kind and operation (upsert or delete), call the provider, judge each record,
write the outcomes fenced by the lease. Providers whose circuit breaker is open are left alone
until a probe works."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.db import transaction, utcnow
from app.models import JobStatus, LinkStatus, Operation, ProviderLink, Record, SyncJob
from app.providers.base import Action, Delivery, FailureKind, Outcome, Provider, ProviderError
from app.records import SPECS, Kind
from app.runtime import LogThrottle, Notifier, Poller
from app.settings import DeliverySettings
from app.sync import breaker, outcomes
from app.sync.deletes import children_pending
from app.sync.outcomes import among, by_dialect
from app.sync.verdicts import (
    Claimed,
    ClaimedJob,
    LinkState,
    Result,
    Snapshot,
    gone,
    judge,
    log_verdicts,
    skip,
    wait,
    wait_children,
)

log = logging.getLogger(__name__)

# Seconds a round of the poll loop goes on claiming while jobs are due (then it lets the loop
# look at its stop signal); one claim's batches follow the last one's without a gap meanwhile.
KEEP_CLAIMING = 2.0

_jobs, _records, _links = (
    cast(Table, model.__table__) for model in (SyncJob, Record, ProviderLink)
)
# The claimed jobs with their records and their links at the job's provider, as plain rows in
# the order of ClaimedJob, Snapshot and LinkState (a Core statement, compiled once).
CLAIMED = by_dialect(
    lambda pg: (
        select(
            *(
                _jobs.c[name]
                for name in (
                    "id",
                    "provider",
                    "operation",
                    "force",
                    "attempts",
                    "deferrals",
                    "failing_since",
                    "lease_token",
                    "bulk_id",
                )
            ),
            *(
                _records.c[name]
                for name in (
                    "id",
                    "kind",
                    "external_id",
                    "data",
                    "content_hash",
                    "parent_kind",
                    "parent_id",
                )
            ),
            _links.c.crm_id,
            _links.c.status,
            _links.c.confirmed_hash,
        )
        .select_from(
            _jobs.join(_records, _records.c.id == _jobs.c.record_id).outerjoin(
                _links,
                and_(
                    _links.c.record_id == _jobs.c.record_id, _links.c.provider == _jobs.c.provider
                ),
            )
        )
        .where(among(_jobs.c.id, "ids", pg))
        .order_by(_jobs.c.id)
    )
)


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
        self.renew_every = settings.lease_seconds / 3  # seconds between lease renewals
        self._slots = asyncio.Semaphore(concurrency)
        self._next_reclaim = 0.0
        self._quiet_renewals = LogThrottle(60.0)
        self._stop: asyncio.Event | None = None  # run()'s: no new claim once it is set

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        """Deliver until `stop` is set; with `drain`, return once nothing is queued or running."""
        log.info("worker %s delivering to %s", self.name, ", ".join(self.providers))
        self._stop = stop
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
        """Rounds of claiming and delivering while jobs are due, for up to KEEP_CLAIMING
        seconds. The next round is claimed while the last one is still delivered (at most two
        in flight), so the `concurrency` slots stay full from one round to the next instead of
        emptying at the end of each. Returns jobs handled, once every round is written."""
        handled = 0
        rounds: set[asyncio.Task[None]] = set()
        until = time.monotonic() + KEEP_CLAIMING
        try:
            while True:
                await self._reclaim_expired()
                claimed = await self._claim()
                if not claimed:
                    break
                handled += len(claimed)
                rounds.add(asyncio.create_task(self._deliver_round(claimed)))
                if time.monotonic() >= until or (self._stop and self._stop.is_set()):
                    break
                while len(rounds) >= 2:
                    _, rounds = await asyncio.wait(rounds, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            for task in rounds:  # as before: a cancelled round leaves its jobs to their lease
                task.cancel()
            raise
        finally:
            # A claim that failed still lets the rounds in flight write their outcomes.
            for failed in await asyncio.gather(*rounds, return_exceptions=True):
                if isinstance(failed, Exception):
                    log.error("a delivery round failed", exc_info=failed)
        return handled

    async def _deliver_round(self, claimed: list[Claimed]) -> None:
        """One claim's jobs, in batches per provider, kind and operation, under the slots; the
        claim's leases are renewed until its last batch is written."""
        batches: dict[tuple[str, Kind, Operation], list[Claimed]] = defaultdict(list)
        for item in claimed:
            key = (item.job.provider, Kind(item.record.kind), Operation(item.job.operation))
            batches[key].append(item)
        tasks = []
        for (provider_name, kind, operation), items in batches.items():
            provider = self.providers[provider_name]
            for start in range(0, len(items), provider.batch_size):
                chunk = items[start : start + provider.batch_size]
                tasks.append(self._deliver_guarded(provider, kind, chunk, operation))
        heartbeat = asyncio.create_task(self._renew(str(claimed[0].job.lease_token)))
        try:
            await asyncio.gather(*tasks)
        finally:
            heartbeat.cancel()

    # -- claiming and leases --------------------------------------------------------------

    async def _claim(self) -> list[Claimed]:
        now = utcnow()
        token = secrets.token_hex(8)
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        async with transaction(self.sessions) as session:
            gate = await breaker.gate(
                session, list(self.providers), now, self.settings.lease_seconds
            )
            open_to = [p for p in self.providers if p not in gate.held and p not in gate.probe]
            ids: list[int] = []
            for name in sorted(gate.probe):  # a provider being probed gets one job
                probe = await self._claim_due(session, [name], 1, token, lease_until, now)
                if not probe:  # nothing due to probe with: look again next round
                    await breaker.no_probe(session, name, now)
                ids += probe
            if open_to:
                ids += await self._claim_due(
                    session, open_to, self.settings.claim_batch, token, lease_until, now
                )
            if not ids:
                return []
            rows = await session.execute(CLAIMED[session.get_bind().dialect.name], {"ids": ids})
            return [
                Claimed(
                    ClaimedJob(*row[:9]),
                    Snapshot(*row[9:16]),
                    LinkState(*row[16:]) if row[17] is not None else None,
                )
                for row in rows
            ]

    async def _claim_due(
        self,
        session: AsyncSession,
        providers: list[str],
        limit: int,
        token: str,
        lease_until: datetime,
        now: datetime,
    ) -> list[int]:
        ids: list[int] = []
        # One status at a time: `status = x ORDER BY run_after` walks the (status, run_after)
        # index and stops after a batch, where `status IN (...)` sorted every due job on each
        # claim (quadratic over a 100,000-job bulk). Queued first; waiting jobs are rechecks
        # that a parent's delivery also wakes directly.
        for status in (JobStatus.queued, JobStatus.waiting):
            room = limit - len(ids)
            if room <= 0:
                break
            due = (
                select(SyncJob.id)
                .where(
                    SyncJob.status == status.value,
                    SyncJob.run_after <= now,
                    SyncJob.provider.in_(providers),
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
                    lease_until=lease_until,
                    lease_token=token,
                    requeue=False,
                    updated_at=now,
                )
                .returning(SyncJob.id)
                .execution_options(synchronize_session=False)
            )
        return ids

    async def _renew(self, token: str) -> None:
        """While this round's batches are delivered, keep their leases: every third of a lease,
        push lease_until forward for the jobs still running under our token."""
        while True:
            await asyncio.sleep(self.renew_every)
            now = utcnow()
            try:
                async with transaction(self.sessions) as session:
                    await session.execute(
                        update(SyncJob)
                        .where(
                            SyncJob.lease_token == token,
                            SyncJob.status == JobStatus.running.value,
                        )
                        .values(lease_until=now + timedelta(seconds=self.settings.lease_seconds))
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # the fence still protects the outcome
                self._quiet_renewals.exception(log, "lease renewal failed", exc)

    async def _reclaim_expired(self) -> None:
        """A worker that died (or stalled past its lease) loses its jobs to the queue."""
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
        self, provider: Provider, kind: Kind, items: list[Claimed], operation: Operation
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
        parent_ids = await self._parents(provider.name, items)
        results: list[Result] = []
        to_send: list[tuple[Claimed, Delivery]] = []
        spec = SPECS[kind]
        now = utcnow()
        for item in items:
            job, record, link = item.job, item.record, item.link
            if kind not in provider.kinds:
                results.append(skip(item, f"{provider.name} does not take {kind} records"))
                continue
            if (
                not job.force
                and link is not None
                and link.status == LinkStatus.synced
                and link.confirmed_hash == record.content_hash
            ):
                results.append(skip(item, "unchanged since the last confirmed sync"))
                continue
            parent_crm_id = None
            if record.parent_kind and record.parent_id:
                parent_crm_id = parent_ids.get((record.parent_kind, record.parent_id))
                if parent_crm_id is None:
                    results.append(
                        wait(
                            item,
                            spec.parent_kind,
                            record.parent_id,
                            provider.name,
                            now,
                            self.settings,
                        )
                    )
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
        await self._send(provider, kind, results, to_send)

    async def _remove(
        self, provider: Provider, kind: Kind, items: list[Claimed], operation: Operation
    ) -> None:
        """Delete (or erase) a batch: children first (a record whose children's deletes are
        still to come here waits for them); nothing to call for a record this provider never
        got or already deleted; the link records the delete once the provider confirmed it."""
        parent_ids = await self._parents(provider.name, items)
        async with self.sessions() as session:
            blocked = await children_pending(
                session, provider.name, ((i.record.kind, i.record.external_id) for i in items)
            )
        results: list[Result] = []
        to_send: list[tuple[Claimed, Delivery]] = []
        now = utcnow()
        for item in items:
            job, record, link = item.job, item.record, item.link
            if (record.kind, record.external_id) in blocked:
                results.append(wait_children(item, provider.name, now, self.settings))
                continue
            if kind not in provider.kinds or link is None or link.crm_id is None:
                results.append(gone(item, f"never created at {provider.name}"))
                continue
            if link.status == LinkStatus.deleted:
                results.append(gone(item, f"already deleted at {provider.name}"))
                continue
            parent = (str(record.parent_kind), str(record.parent_id))
            delivery = Delivery(
                job_id=job.id,
                kind=kind,
                record_id=record.external_id,
                data=record.data,
                crm_id=link.crm_id,
                parent_crm_id=parent_ids.get(parent) if record.parent_id else None,
                # Per CRM object: a record deleted, sent again and deleted again is a new delete.
                idempotency_key=f"{provider.name}-{job.id}-{operation.value}-{link.crm_id}",
                operation=operation,
            )
            to_send.append((item, delivery))
        await self._send(provider, kind, results, to_send, remove=True)

    async def _send(
        self,
        provider: Provider,
        kind: Kind,
        results: list[Result],
        to_send: list[tuple[Claimed, Delivery]],
        *,
        remove: bool = False,
    ) -> None:
        """Call the provider for `to_send`, judge each answer, and write every result of the
        batch (those judged before the call too)."""
        call_error: str | None = None
        if to_send:
            started = time.perf_counter()
            answers = await self._call(provider, kind, [d for _, d in to_send], remove=remove)
            elapsed = time.perf_counter() - started
            errors = (o.error.kind if o.error else None for o in answers)
            metrics.observe_call(provider.name, kind.value, elapsed, errors)
            call_error = breaker.call_failed(answers)
            per_record_ms = elapsed * 1000 / len(to_send)
            now = utcnow()
            for (item, _), outcome in zip(to_send, answers, strict=True):
                if remove:
                    outcome.action = Action.delete
                result = judge(item, outcome, now, self.settings)
                result.duration_ms = per_record_ms
                result.removed = remove
                results.append(result)
        async with transaction(self.sessions) as session:
            written = await outcomes.write(
                session,
                provider.name,
                kind,
                results,
                utcnow(),
                call_error=call_error,
                called=bool(to_send),
                settings=self.settings,
            )
        if len(written) < len(results):
            log.warning(
                "worker %s lost the lease of %d %s job(s) at %s: their outcome is dropped and "
                "they go round again",
                self.name,
                len(results) - len(written),
                kind.value,
                provider.name,
            )
        self.notifier.notify()
        metrics.count_jobs(
            provider.name,
            [(r.status, r.log_status.value if r.log_status else None) for r in written],
        )
        log_verdicts(provider.name, written)

    async def _parents(self, provider: str, items: Sequence[Claimed]) -> dict[tuple[str, str], str]:
        """This provider's CRM ids for the batch's parents (no query for a batch without)."""
        parents = {(i.record.parent_kind, i.record.parent_id) for i in items if i.record.parent_id}
        if not parents:
            return {}
        async with self.sessions() as session:
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
            return {(k, e): c for k, e, c in rows if c}

    async def _call(
        self, provider: Provider, kind: Kind, deliveries: list[Delivery], *, remove: bool = False
    ) -> list[Outcome]:
        """The provider call (its delete path when `remove`); a whole-batch failure becomes the
        same failure for each record."""
        try:
            async with asyncio.timeout(self.settings.provider_timeout):
                call = provider.delete if remove else provider.deliver
                answers = await call(kind, deliveries)
            if len(answers) != len(deliveries):
                raise ProviderError(
                    FailureKind.transient,
                    f"{provider.name} answered {len(answers)} outcomes for {len(deliveries)}",
                )
            return answers
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
