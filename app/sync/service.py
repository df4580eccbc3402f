"""Accepting records: store the latest snapshot and enqueue its jobs in the caller's transaction."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
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
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.models import JobStatus, LinkStatus, ProviderLink, Record, SyncJob
from app.records import SPECS, FieldError, Kind, KindSpec, content_hash, normalise, parent_of

ACTIVE = (JobStatus.queued, JobStatus.running, JobStatus.waiting)
SETTLED = (JobStatus.done, JobStatus.failed, JobStatus.dead)


@dataclass(frozen=True, slots=True)
class Accepted:
    record: Record
    enqueued: int  # jobs queued (0: unchanged everywhere, nothing to send)
    changed: bool  # the snapshot's content changed


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if is_postgres(session) else sqlite.insert


async def load_record(
    session: AsyncSession, kind: Kind, external_id: str, *, for_update: bool = False
) -> Record | None:
    stmt = select(Record).where(Record.kind == kind.value, Record.external_id == external_id)
    if for_update and is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


def merge_snapshot(
    spec: KindSpec, stored: dict[str, Any] | None, fields: dict[str, Any], region: str
) -> dict[str, Any]:
    """The stored snapshot updated with the fields given (an explicit null clears one)."""
    merged = {**(stored or {}), **fields}
    try:
        return normalise(spec, merged, region)
    except FieldError as exc:
        raise InvalidInput(exc.field, exc.message) from None


async def store(
    session: AsyncSession, kind: Kind, fields: dict[str, Any], region: str
) -> tuple[Record, bool]:
    """Upsert the record's snapshot; `fields` holds the id field and whatever else was sent.
    Returns the record and whether its content changed. A body with only the id re-uses the
    stored snapshot (404 if there is none)."""
    spec = SPECS[kind]
    external_id = str(fields[spec.id_field])
    record = await load_record(session, kind, external_id, for_update=True)
    only_id = set(fields) <= {spec.id_field}
    if record is None and only_id:
        raise NotFound(f"{spec.label} {external_id} has not been synced before; send its fields")
    snapshot = merge_snapshot(spec, record.data if record else None, fields, region)
    digest = content_hash(snapshot)
    parent = parent_of(spec, snapshot)
    now = utcnow()
    if record is None:
        record = Record(
            kind=kind.value,
            external_id=external_id,
            data=snapshot,
            content_hash=digest,
            parent_kind=parent[0].value if parent else None,
            parent_id=parent[1] if parent else None,
            created_at=now,
            updated_at=now,
        )
        session.add(record)
        await session.flush()
        return record, True
    changed = record.content_hash != digest
    if changed:
        record.data = snapshot
        record.content_hash = digest
        record.parent_kind = parent[0].value if parent else None
        record.parent_id = parent[1] if parent else None
        record.updated_at = now
        await session.flush()
    return record, changed


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
            "deferrals": case((ended, 0), else_=SyncJob.deferrals),
            "last_error": case((ended, None), else_=SyncJob.last_error),
            "force": or_(SyncJob.force, stmt.excluded.force),
            # A job still in flight keeps the bulk it serves when a plain sync folds into
            # it (the delivery still answers that bulk); an ended one takes the new id.
            "bulk_id": case(
                (ended, stmt.excluded.bulk_id),
                else_=func.coalesce(stmt.excluded.bulk_id, SyncJob.bulk_id),
            ),
            "updated_at": stmt.excluded.updated_at,
        },
    )


async def accept(
    session: AsyncSession,
    kind: Kind,
    fields: dict[str, Any],
    providers: Sequence[str],
    region: str,
    *,
    force: bool = False,
) -> Accepted:
    record, changed = await store(session, kind, fields, region)
    # A body with only the id is an explicit re-sync: it also retries a rejected snapshot.
    only_id = set(fields) <= {SPECS[kind].id_field}
    enqueued = await enqueue(session, [record.id], providers, force=force, retry_failed=only_id)
    return Accepted(record=record, enqueued=enqueued, changed=changed)


@dataclass(frozen=True, slots=True)
class ProviderState:
    provider: str
    status: str  # pending / synced / failed
    crm_id: str | None
    last_synced_at: datetime | None
    last_error: str | None
    last_log_id: int | None
    settled: bool  # no job in flight


def provider_state(
    provider: str, record: Record, link: ProviderLink | None, job: SyncJob | None
) -> ProviderState:
    job_status = JobStatus(job.status) if job else None
    settled = job_status is None or job_status in SETTLED
    if job_status in (JobStatus.failed, JobStatus.dead):
        status = LinkStatus.failed
    elif (
        settled
        and link is not None
        and link.status == LinkStatus.synced
        and link.confirmed_hash == record.content_hash
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
        last_error=error if status != LinkStatus.synced else None,
        last_log_id=link.last_log_id if link else None,
        settled=settled,
    )


async def record_states(
    session: AsyncSession, record: Record, providers: Sequence[str]
) -> list[ProviderState]:
    # Jobs before links: the worker commits a job's end and its link together, and under READ
    # COMMITTED each statement sees the latest commit. Read links first and a delivery landing
    # in between looks settled-but-unsynced (a false 202); read jobs first and the worst case is
    # "still running", which the caller simply waits out.
    jobs = {
        job.provider: job
        for job in await session.scalars(select(SyncJob).where(SyncJob.record_id == record.id))
    }
    links = {
        link.provider: link
        for link in await session.scalars(
            select(ProviderLink).where(ProviderLink.record_id == record.id)
        )
    }
    return [provider_state(p, record, links.get(p), jobs.get(p)) for p in providers]
