"""Deleting records: marking a record (and, with cascade, everything under it) deleted and
queueing its deletes in one transaction; and what the delivery worker needs for them: children
before parents (a parent's delete waits while a delete of one of its children is still to be
delivered at that provider, the reverse of an upsert waiting for its parent), and the parents
woken once their children are gone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict
from app.models import JobStatus, Operation, Record, SyncJob
from app.records import PUBLIC_KINDS, SPECS, Kind
from app.sync.outbox import ACTIVE, enqueue_delete, wake_jobs
from app.sync.verdicts import Snapshot

REMOVING = (Operation.delete.value, Operation.erase.value)


class LiveChildren(Conflict):
    """409: a record with live children, deleted without cascade."""


@dataclass(frozen=True, slots=True)
class Marked:
    """What a delete marked: (kind, website id) of each record, children first; jobs queued."""

    records: list[tuple[str, str]]
    queued: int


async def live_family(session: AsyncSession, record: Record) -> list[Record]:
    """The live (not deleted) records under `record`, every generation, deepest first."""
    found: list[list[Record]] = []
    level = [(record.kind, record.external_id)]
    while level:
        rows = list(
            await session.scalars(
                select(Record)
                .where(
                    tuple_(Record.parent_kind, Record.parent_id).in_(level),
                    Record.deleted_at.is_(None),
                )
                .order_by(Record.id)
            )
        )
        found.append(rows)
        level = [(r.kind, r.external_id) for r in rows]
    return [r for rows in reversed(found) for r in rows]


async def mark_deleted(
    session: AsyncSession,
    record: Record,
    providers: Sequence[str],
    *,
    cascade: bool,
    operation: Operation = Operation.delete,
) -> Marked:
    """Mark `record` deleted and queue its delete at every provider, in the caller's
    transaction. Records of the service's own making under it (Stripe notes and activities) go
    with it; live website records under it (a property's enquiries, an owner's properties or
    membership) raise LiveChildren naming them, unless `cascade`, when they go too."""
    family = await live_family(session, record)
    children = [r for r in family if Kind(r.kind) in PUBLIC_KINDS]
    if children and not cascade:
        label = SPECS[Kind(record.kind)].label
        named = ", ".join(f"{r.kind} {r.external_id}" for r in children[:10])
        more = f" and {len(children) - 10} more" if len(children) > 10 else ""
        raise LiveChildren(
            f"{label} {record.external_id} has live children ({named}{more}): delete them "
            "first, or pass cascade=true to delete them with it",
            children=[{"kind": r.kind, "id": r.external_id} for r in children],
        )
    doomed = [*family, record]
    now = utcnow()
    await session.execute(
        update(Record)
        .where(Record.id.in_([r.id for r in doomed]))
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    queued = await enqueue_delete(session, [r.id for r in doomed], providers, operation, now=now)
    return Marked([(r.kind, r.external_id) for r in doomed], queued)


async def children_pending(
    session: AsyncSession, provider: str, parents: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (kind, website id) parents still have a child whose delete is queued,
    running or waiting at `provider`."""
    wanted = list(set(parents))
    if not wanted:
        return set()
    rows = await session.execute(
        select(Record.parent_kind, Record.parent_id)
        .join(SyncJob, SyncJob.record_id == Record.id)
        .where(
            SyncJob.provider == provider,
            SyncJob.operation.in_(REMOVING),
            SyncJob.status.in_([s.value for s in ACTIVE]),
            tuple_(Record.parent_kind, Record.parent_id).in_(wanted),
        )
        .distinct()
    )
    return {(str(kind), str(pid)) for kind, pid in rows}


async def wake_parents(
    session: AsyncSession, provider: str, removed: Iterable[Snapshot], now: datetime
) -> None:
    """Parents whose delete waits for these children go now; one being judged at this moment
    is flagged to go round again, so its 'waiting' verdict cannot swallow this wake-up."""
    parents = list({(r.parent_kind, r.parent_id) for r in removed if r.parent_kind and r.parent_id})
    if not parents:
        return
    ids = select(Record.id).where(tuple_(Record.kind, Record.external_id).in_(parents))
    # In id order, as the worker locks jobs, so two workers never wait on each other in a circle.
    locked = list(
        await session.scalars(
            select(SyncJob.id)
            .where(
                SyncJob.provider == provider,
                SyncJob.operation.in_(REMOVING),
                SyncJob.status.in_([JobStatus.waiting.value, JobStatus.running.value]),
                SyncJob.record_id.in_(ids.scalar_subquery()),
            )
            .order_by(SyncJob.id)
            .with_for_update()
        )
    )
    if not locked:
        return
    await wake_jobs(session, locked, now)
