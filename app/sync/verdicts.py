"""Judging a claimed job: skipped, waiting for its parent, done, failed (rejected), retried later
or dead (failing past the retry horizon). Pure: no I/O, so every rule is easy to test."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.models import JobStatus, LogStatus
from app.providers.base import Action, FailureKind, Outcome
from app.records import Kind
from app.settings import DeliverySettings

log = logging.getLogger("app.sync.worker")

WAIT_RECHECK = 30.0  # seconds before a job waiting for its parent looks again, as a safety net
HOLD_UNAUTHORIZED = 60.0  # seconds a provider with bad credentials is left alone
# Failures that run the retry-horizon clock: the CRM failing. A 429 is its limit working and
# bad credentials are ours to fix: neither ever makes a record dead.
HORIZON_KINDS = frozenset({FailureKind.transient, FailureKind.timeout})


@dataclass(slots=True)
class ClaimedJob:
    """The columns of a claimed `sync_jobs` row the delivery reads (plain values, no ORM
    object: the claim builds a thousand of these at a time)."""

    id: int
    provider: str
    operation: str  # Operation value
    force: bool
    attempts: int
    deferrals: int
    failing_since: datetime | None
    lease_token: str | None  # the fencing token every outcome write is checked against
    bulk_id: str | None


@dataclass(slots=True)
class Snapshot:
    """The columns of the claimed job's `records` row: the latest snapshot to deliver."""

    id: int
    kind: str
    external_id: str
    data: dict[str, Any]
    content_hash: str
    parent_kind: str | None
    parent_id: str | None


@dataclass(slots=True)
class LinkState:
    """Where the record stood at the job's provider when it was claimed (`provider_links`)."""

    crm_id: str | None
    status: str  # LinkStatus value
    confirmed_hash: str | None


@dataclass(slots=True)
class Claimed:
    """One job this worker holds under its lease, with its record and its link there."""

    job: ClaimedJob
    record: Snapshot
    link: LinkState | None = None


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
    failing_since: datetime | None = None
    duration_ms: float | None = None
    removed: bool = False  # a delete (or erasure) job's result


def backoff(n: int, settings: DeliverySettings) -> float:
    """Seconds before retry n: base * 2^(n-1), capped at DELIVERY_BACKOFF_MAX, scaled by a
    random 50-100% so the retries of many records spread out."""
    delay = min(settings.backoff_max, settings.backoff_base * 2 ** min(max(n - 1, 0), 60))
    return float(delay * random.uniform(0.5, 1.0))


def skip(item: Claimed, reason: str) -> Result:
    job = item.job
    return Result(
        item,
        JobStatus.done,
        log_status=LogStatus.skipped,
        error=reason,
        attempts=job.attempts,
        deferrals=job.deferrals,
    )


def wait(
    item: Claimed,
    parent_kind: Kind | None,
    parent_id: str,
    provider: str,
    now: datetime,
    settings: DeliverySettings,
) -> Result:
    """The parent has no CRM id at this provider yet: its delivery wakes this job; a slow
    recheck is the safety net."""
    deferrals = item.job.deferrals + 1
    delay = min(WAIT_RECHECK * deferrals, settings.backoff_max)
    return Result(
        item,
        JobStatus.waiting,
        error=f"waiting for {parent_kind} {parent_id} to be synced to {provider}",
        run_after=now + timedelta(seconds=delay),
        attempts=item.job.attempts,
        deferrals=deferrals,
        failing_since=item.job.failing_since,
    )


def gone(item: Claimed, reason: str) -> Result:
    """A delete with nothing to send (the provider never had the record, or deleted it
    already): the record counts as deleted there."""
    result = skip(item, reason)
    result.action, result.removed = Action.delete, True
    return result


def wait_children(
    item: Claimed, provider: str, now: datetime, settings: DeliverySettings
) -> Result:
    """A delete whose record still has children to delete at this provider: their deletes wake
    it; a slow recheck is the safety net."""
    record = item.record
    result = wait(item, None, record.external_id, provider, now, settings)
    result.error = (
        f"waiting for the deletes of {record.kind} {record.external_id}'s children at {provider}"
    )
    return result


def judge(item: Claimed, outcome: Outcome, now: datetime, settings: DeliverySettings) -> Result:
    """done on success; failed at once on a rejection (4xx); otherwise retried with backoff
    (honouring Retry-After), and dead only once the record has been failing for longer than
    DELIVERY_RETRY_HORIZON."""
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
    failing_since = job.failing_since
    if error.kind in HORIZON_KINDS:
        failing_since = failing_since or now
        if now - failing_since >= settings.retry_horizon:
            return Result(
                item,
                JobStatus.dead,
                outcome,
                LogStatus.failed,
                outcome.action,
                # The job keeps `failing_since`; the reason stays the same text for every record
                # that died of one cause, so ops see them as one group.
                error=f"{error.message} (gave up: failing past the retry horizon of "
                f"{settings.retry_horizon})",
                attempts=attempts + 1,
                deferrals=deferrals,
                failing_since=failing_since,
            )
    if error.kind is FailureKind.transient:
        attempts += 1
        delay = backoff(attempts, settings)
    else:  # rate limited, timed out, unauthorised: not the record's fault
        deferrals += 1
        delay = backoff(deferrals, settings)
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
        failing_since=failing_since,
    )


def log_verdicts(provider: str, results: Sequence[Result]) -> None:
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
