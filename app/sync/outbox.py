"""The outbox: one job row per (record, provider), queued set-based in the caller's transaction;
its operation is an upsert of the latest snapshot or a delete (the latest word wins).

A queued job absorbs newer content (one delivery of the latest snapshot), a running one is marked
to go round again, and content a provider already confirmed gets no job at all."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import JobStatus, LinkStatus, Operation, ProviderLink, Record, SyncJob

ACTIVE = (JobStatus.queued, JobStatus.running, JobStatus.waiting)
SETTLED = (JobStatus.done, JobStatus.failed, JobStatus.dead)


async def enqueue(
    session: AsyncSession,
    record_ids: Select[int] | Sequence[int],
    providers: Sequence[str],
    *,
    force: bool = False,
    bulk_id: str | None = None,
    only_failed: bool = False,
    retry_failed: bool = False,
    now: datetime | None = None,
) -> int:
    """Queue a delivery of each record to each provider unless that provider already confirmed
    this content (or `force`). Content a provider rejected is not sent again unchanged unless
    `retry_failed`. A queued job absorbs the newer content; a running one is marked to go round
    again. Set-based: one INSERT ... SELECT ... ON CONFLICT per provider."""
    params: dict[str, Any] = {"now": now or utcnow(), "bulk_id": bulk_id}
    dialect = session.get_bind().dialect.name
    if isinstance(record_ids, Select):
        ids_clause = Record.id.in_(record_ids.scalar_subquery())
        stmt = _enqueue_statement(dialect, ids_clause, force, only_failed, retry_failed)
    else:
        # The accept path's statement, built once: building it cost more than running it.
        stmt = _cached_enqueue_statement(dialect, force, only_failed, retry_failed)
        params["ids"] = list(record_ids)
    total = 0
    for provider in providers:
        result = await session.execute(stmt, {**params, "provider": provider})
        total += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    return total


@functools.cache
def _cached_enqueue_statement(
    dialect: str, force: bool, only_failed: bool, retry_failed: bool
) -> Any:
    ids_clause = Record.id.in_(bindparam("ids", expanding=True))
    return _enqueue_statement(dialect, ids_clause, force, only_failed, retry_failed)


def _enqueue_statement(
    dialect: str,
    ids_clause: ColumnElement[bool],
    force: bool,
    only_failed: bool,
    retry_failed: bool,
) -> Any:
    """INSERT ... SELECT ... ON CONFLICT for one provider; binds: provider, now, bulk_id."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    provider = bindparam("provider", type_=String())
    now = bindparam("now", type_=SyncJob.run_after.type)
    link = ProviderLink.__table__.alias("l")
    unconfirmed = or_(
        link.c.confirmed_hash.is_(None),
        link.c.confirmed_hash != Record.content_hash,
        link.c.status != LinkStatus.synced.value,
    )
    # coalesce: with no link row these are NULL, and NOT NULL would drop the record.
    rejected_as_is = and_(
        func.coalesce(link.c.status, "") == LinkStatus.failed.value,
        func.coalesce(link.c.attempted_hash, "") == Record.content_hash,
    )
    if not retry_failed:
        unconfirmed = and_(unconfirmed, ~rejected_as_is)
    wanted = true() if force else unconfirmed
    if only_failed:
        wanted = and_(wanted, link.c.status == LinkStatus.failed.value)
    source = (
        select(
            Record.id,
            provider,
            literal(JobStatus.queued.value),
            now,
            literal(force),
            bindparam("bulk_id", type_=SyncJob.bulk_id.type),
            literal(Operation.upsert.value),
            now,
            now,
        )
        .select_from(Record)
        .outerjoin(link, and_(link.c.record_id == Record.id, link.c.provider == provider))
        .where(ids_clause, wanted)
    )
    # The Core table: executed with parameters, an ORM insert would turn into a bulk insert.
    stmt = insert(cast(Table, SyncJob.__table__)).from_select(
        [
            "record_id",
            "provider",
            "status",
            "run_after",
            "force",
            "bulk_id",
            "operation",
            "created_at",
            "updated_at",
        ],
        source,
    )
    ended = SyncJob.status.in_([s.value for s in SETTLED])
    running = SyncJob.status == JobStatus.running.value
    return stmt.on_conflict_do_update(
        index_elements=["record_id", "provider"],
        set_={
            "status": case((running, SyncJob.status), else_=JobStatus.queued.value),
            "requeue": case((running, true()), else_=false()),
            # A job backing off keeps its wait; an ended one starts afresh.
            "run_after": case((ended, stmt.excluded.run_after), else_=SyncJob.run_after),
            "attempts": case((ended, 0), else_=SyncJob.attempts),
            "failing_since": case((ended, None), else_=SyncJob.failing_since),
            "deferrals": case((ended, 0), else_=SyncJob.deferrals),
            "last_error": case((ended, None), else_=SyncJob.last_error),
            "force": or_(SyncJob.force, stmt.excluded.force),
            # New content takes over a queued delete: the record is back (re-created if the
            # delete was delivered first).
            "operation": stmt.excluded.operation,
            # A job still in flight keeps the bulk it serves when a plain sync folds into
            # it (the delivery still answers that bulk); an ended one takes the new id.
            "bulk_id": case(
                (ended, stmt.excluded.bulk_id),
                else_=func.coalesce(stmt.excluded.bulk_id, SyncJob.bulk_id),
            ),
            "updated_at": stmt.excluded.updated_at,
        },
    )


async def enqueue_delete(
    session: AsyncSession,
    record_ids: Sequence[int],
    providers: Sequence[str],
    operation: Operation = Operation.delete,
    *,
    now: datetime | None = None,
) -> int:
    """Queue a delete (or an erasure) of each record at each provider, in the caller's
    transaction. It takes over the record's job there: a queued create or update is not sent;
    one being delivered finishes, then the job goes round again as the delete."""
    if not record_ids or not providers:
        return 0
    at = now or utcnow()
    rows = [
        {
            "record_id": record_id,
            "provider": provider,
            "status": JobStatus.queued.value,
            "operation": operation.value,
            "run_after": at,
            "created_at": at,
            "updated_at": at,
        }
        for record_id in record_ids
        for provider in providers
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # One multi-row VALUES (an executemany cannot carry the IN below); a delete is a handful
    # of records, an erasure a person's.
    stmt = insert(cast(Table, SyncJob.__table__)).values(rows)
    ended = SyncJob.status.in_([s.value for s in SETTLED])
    running = SyncJob.status == JobStatus.running.value
    stmt = stmt.on_conflict_do_update(
        index_elements=["record_id", "provider"],
        set_={
            "operation": stmt.excluded.operation,
            "status": case((running, SyncJob.status), else_=JobStatus.queued.value),
            "requeue": case((running, true()), else_=false()),
            # A delete is due now, even where an upsert was waiting for its parent.
            "run_after": case((running, SyncJob.run_after), else_=stmt.excluded.run_after),
            "attempts": case((ended, 0), else_=SyncJob.attempts),
            "deferrals": case((ended, 0), else_=SyncJob.deferrals),
            "last_error": case((ended, None), else_=SyncJob.last_error),
            "force": false(),
            "bulk_id": None,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await session.execute(stmt)
    return len(rows)


async def wake_jobs(session: AsyncSession, job_ids: list[int], now: datetime) -> None:
    """Jobs `job_ids` (already locked by the caller, in id order) go now: a waiting one is queued
    at `now`; a running one (being judged at this moment) is flagged to go round again, so its
    'waiting' verdict cannot swallow the wake-up. Jobs in any other state are left alone."""
    waiting = SyncJob.status == JobStatus.waiting.value
    running = SyncJob.status == JobStatus.running.value
    await session.execute(
        update(SyncJob)
        .where(
            SyncJob.id.in_(job_ids),
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
