"""The sync log for ops: find rows (newest first, keyset cursor), requeue failed or dead jobs,
and purge old rows in batches."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction, utcnow
from app.errors import InvalidInput
from app.inputs import MAX_ID, text_problem
from app.models import JobStatus, LogStatus, Record, SyncJob, SyncLog
from app.ops.schemas import LogRow
from app.records import Kind
from app.times import iso

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
RetryStatus = Literal["failed", "dead"]

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.I)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(value: str, field: str) -> timedelta:
    """'90d', '24h', '15m', '30s', '2w'."""
    match = _AGE.match(value)
    if not match:
        raise InvalidInput(field, f"{value!r} is not an age like 90d, 24h or 15m")
    try:
        return timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
    except OverflowError:
        raise InvalidInput(field, f"{value!r} is longer than this calendar goes") from None


def parse_since(value: str, field: str = "since") -> datetime:
    """An ISO 8601 time (UTC if no offset is given) or an age back from now (24h, 7d)."""
    try:
        if _AGE.match(value):
            return utcnow() - parse_age(value, field)
        when = datetime.fromisoformat(value.strip())
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            field, f"{value!r} is neither an ISO 8601 time nor an age like 24h"
        ) from None


def encode_cursor(log_id: int) -> str:
    return base64.urlsafe_b64encode(f"log:{log_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "log" or not value.isdigit() or int(value) > MAX_ID:
            raise ValueError(raw)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor", "not a cursor this service gave out (use nextCursor as is)"
        ) from None


def text_param(value: str | None, field: str) -> str | None:
    """A free-text filter, refused if the database could not even compare it (NUL)."""
    if value is not None and (problem := text_problem(value)):
        raise InvalidInput(field, problem)
    return value


def parse_kind(value: str | None, field: str = "entityType") -> Kind | None:
    if value is None:
        return None
    try:
        return Kind(value)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        raise InvalidInput(field, f"{value!r} is not one of {known}") from None


@dataclass(frozen=True, slots=True)
class LogFilter:
    entity_type: Kind | None = None
    entity_id: str | None = None
    provider: str | None = None
    status: LogStatus | None = None
    since: datetime | None = None
    job_id: int | None = None
    bulk_id: str | None = None
    limit: int = DEFAULT_LIMIT
    before: int | None = None  # from the cursor: rows with a smaller id


@dataclass(frozen=True, slots=True)
class LogPage:
    rows: list[SyncLog]
    next_cursor: str | None


async def find_logs(session: AsyncSession, wanted: LogFilter) -> LogPage:
    """Newest first; keyset on id, so a page costs the same at any depth."""
    stmt: Select[SyncLog] = select(SyncLog)
    if wanted.entity_type is not None:
        stmt = stmt.where(SyncLog.entity_type == wanted.entity_type.value)
    if wanted.entity_id is not None:
        stmt = stmt.where(SyncLog.entity_id == wanted.entity_id)
    if wanted.provider is not None:
        stmt = stmt.where(SyncLog.provider == wanted.provider)
    if wanted.status is not None:
        stmt = stmt.where(SyncLog.status == wanted.status.value)
    if wanted.since is not None:
        stmt = stmt.where(SyncLog.created_at >= wanted.since)
    if wanted.job_id is not None:
        stmt = stmt.where(SyncLog.job_id == wanted.job_id)
    if wanted.bulk_id is not None:
        stmt = stmt.where(SyncLog.bulk_id == wanted.bulk_id)
    if wanted.before is not None:
        stmt = stmt.where(SyncLog.id < wanted.before)
    rows = list(await session.scalars(stmt.order_by(SyncLog.id.desc()).limit(wanted.limit + 1)))
    more = len(rows) > wanted.limit
    rows = rows[: wanted.limit]
    return LogPage(rows, encode_cursor(rows[-1].id) if more and rows else None)


def log_view(row: SyncLog) -> LogRow:
    return LogRow(
        id=row.id,
        createdAt=iso(row.created_at),
        provider=row.provider,
        entityType=row.entity_type,
        entityId=row.entity_id,
        crmId=row.crm_id,
        action=row.action,
        status=LogStatus(row.status),
        httpStatus=row.http_status,
        error=row.error,
        durationMs=row.duration_ms,
        attempt=row.attempt,
        jobId=row.job_id,
        bulkId=row.bulk_id,
        request=row.request,
        response=row.response,
    )


async def retry_jobs(
    session: AsyncSession,
    statuses: list[RetryStatus],
    *,
    kind: Kind | None = None,
    entity_id: str | None = None,
    provider: str | None = None,
    reason: str | None = None,
    job_ids: Sequence[int] | None = None,
) -> int:
    """Requeue failed (rejected) and/or dead (failing past the retry horizon) jobs, attempts
    reset; the worker sends them whatever their link says. `reason` takes only jobs whose last
    error is exactly that text (a group of the failures view); `job_ids` only those jobs.
    Returns how many were requeued."""
    now = utcnow()
    stmt = update(SyncJob).where(SyncJob.status.in_(list(statuses)))
    if provider is not None:
        stmt = stmt.where(SyncJob.provider == provider)
    if reason is not None:
        stmt = stmt.where(SyncJob.last_error == reason)
    if job_ids is not None:
        stmt = stmt.where(SyncJob.id.in_(list(job_ids)))
    if kind is not None or entity_id is not None:
        records = select(Record.id)
        if kind is not None:
            records = records.where(Record.kind == kind.value)
        if entity_id is not None:
            records = records.where(Record.external_id == entity_id)
        stmt = stmt.where(SyncJob.record_id.in_(records.scalar_subquery()))
    result = await session.execute(
        stmt.values(
            status=JobStatus.queued.value,
            attempts=0,
            deferrals=0,
            failing_since=None,
            run_after=now,
            last_error=None,
            lease_token=None,
            lease_until=None,
            requeue=False,
            updated_at=now,
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def count_older(session: AsyncSession, cutoff: datetime) -> int:
    stmt = select(func.count()).select_from(SyncLog).where(SyncLog.created_at < cutoff)
    return int(await session.scalar(stmt) or 0)


async def purge_logs(
    sessions: async_sessionmaker[AsyncSession],
    cutoff: datetime,
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete sync-log rows older than `cutoff`, `batch_size` at a time, each batch its own
    short transaction so the table stays writable meanwhile. Returns rows deleted."""
    total = 0
    while True:
        async with transaction(sessions) as session:
            oldest = (
                select(SyncLog.id)
                .where(SyncLog.created_at < cutoff)
                .order_by(SyncLog.id)
                .limit(batch_size)
            )
            result = await session.execute(
                delete(SyncLog)
                .where(SyncLog.id.in_(oldest.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
        deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
        total += deleted
        if progress is not None and deleted:
            progress(deleted)
        if deleted < batch_size:
            return total


def check_provider(provider: str | None, configured: list[str], field: str = "provider") -> None:
    if provider is not None and provider not in configured:
        known = ", ".join(configured)
        raise InvalidInput(field, f"{provider!r} is not configured; configured: {known}")
