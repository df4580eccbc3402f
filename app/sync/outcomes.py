"""Writing a batch's outcome: its sync-log rows, links, job verdicts, the children it wakes and
the provider's breaker, in one transaction fenced by the lease token. A worker that lost its
lease (it stalled, another worker took the jobs over) writes nothing of what it did: its jobs go
round once more with the latest snapshot, so a stale call that landed late at the CRM is
overwritten by the newest content."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Table,
    TableValuedAlias,
    Text,
    and_,
    any_,
    bindparam,
    case,
    column,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from app.db import UTCDateTime, is_postgres, json_dumps
from app.models import JobStatus, LinkStatus, LogStatus, ProviderLink, Record, SyncJob, SyncLog
from app.providers.base import Action, redact
from app.records import Kind
from app.settings import DeliverySettings
from app.sync import breaker
from app.sync.deletes import wake_parents
from app.sync.outbox import wake_jobs
from app.sync.verdicts import Result, Snapshot

# Verdicts after which a job flagged `requeue` goes round again at once.
SETTLES = frozenset({JobStatus.done, JobStatus.failed, JobStatus.dead, JobStatus.waiting})
# Core table: per-row WHERE (lease token) in an executemany UPDATE is a Core feature.
JOBS = cast(Table, SyncJob.__table__)
# The sync log's Core table: its rows go in by executemany with one cached statement, not
# through the ORM's per-row bookkeeping.
LOGS = cast(Table, SyncLog.__table__)
RECORDS = cast(Table, Record.__table__)
LINKS = cast(Table, ProviderLink.__table__)


def among(column: ColumnElement[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name`: `= ANY(array)` on PostgreSQL, one
    parameter whatever the list's length (an expanding IN renders a parameter per value at
    every execution: a thousand for a claim); an expanding IN on SQLite, which has no arrays."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def by_dialect(build: Callable[[bool], Any]) -> dict[str, Any]:
    """A statement built once per dialect (`build(postgres)`), by dialect name."""
    return {"postgresql": build(True), "sqlite": build(False)}


# The jobs of a batch still leased to us (binds: ids, token), locked in id order. Core
# statements built once: every batch runs them.
FENCE = by_dialect(
    lambda pg: (
        select(JOBS.c.id)
        .where(
            among(JOBS.c.id, "ids", pg),
            JOBS.c.lease_token == bindparam("token"),
            JOBS.c.status == JobStatus.running.value,
        )
        .order_by(JOBS.c.id)
        .with_for_update()
    )
)
# The jobs at a provider of the children of just-delivered records that wait for them or are
# being judged (binds: provider, kind, parents), locked in id order first (another worker may
# be writing some of them, in the same order).
CHILD_JOBS = by_dialect(
    lambda pg: (
        select(JOBS.c.id)
        .where(
            JOBS.c.provider == bindparam("provider"),
            JOBS.c.status.in_([JobStatus.waiting.value, JobStatus.running.value]),
            JOBS.c.record_id.in_(
                select(RECORDS.c.id).where(
                    RECORDS.c.parent_kind == bindparam("kind"),
                    among(RECORDS.c.parent_id, "parents", pg),
                )
            ),
        )
        .order_by(JOBS.c.id)
        .with_for_update()
    )
)


async def write(
    session: AsyncSession,
    provider: str,
    kind: Kind,
    results: Sequence[Result],
    now: datetime,
    *,
    call_error: str | None,
    called: bool,
    settings: DeliverySettings,
) -> list[Result]:
    """Write the outcomes of jobs this worker still holds; returns those written. `called`:
    the provider was called (its breaker learns `call_error`: None when the CRM answered)."""
    if not results:
        return []
    held = await _fence(session, results)
    mine = [r for r in results if r.claimed.job.id in held]
    lost = [r for r in results if r.claimed.job.id not in held and r.outcome is not None]
    if lost:
        await _send_again(session, [r.claimed.job.id for r in lost], now)
    if mine:
        log_ids = await _insert_logs(session, provider, kind, mine, now)
        await _upsert_links(session, provider, mine, log_ids, now)
        await _update_jobs(session, mine, now)
        removed = [r.claimed.record for r in mine if _gone(r)]
        if removed:  # parents whose deletes waited for these children go now
            await wake_parents(session, provider, removed, now)
        delivered = [
            r.claimed.record for r in mine if r.log_status is LogStatus.success and not r.removed
        ]
        await _wake_children(session, provider, kind, delivered, now)
    if called:
        await breaker.record(session, provider, call_error, now, settings)
    return mine


async def _fence(session: AsyncSession, results: Sequence[Result]) -> set[int]:
    """The jobs still leased to us, locked (in id order, as every writer of jobs locks them)
    until this transaction ends, so nobody reclaims them between the check and the writes."""
    token = results[0].claimed.job.lease_token
    ids = sorted(r.claimed.job.id for r in results)
    fence = FENCE[session.get_bind().dialect.name]
    return set(await session.scalars(fence, {"ids": ids, "token": token}))


async def _send_again(session: AsyncSession, job_ids: list[int], now: datetime) -> None:
    """Jobs whose lease we lost after calling the CRM: what we sent may land after what the new
    holder sent, so each goes round once more, forced, with the latest snapshot (a running one
    when its holder is done, a settled one now)."""
    running = SyncJob.status == JobStatus.running.value
    queued = SyncJob.status == JobStatus.queued.value
    await session.execute(
        update(SyncJob)
        .where(SyncJob.id.in_(job_ids))
        .values(
            requeue=case((running, true()), else_=SyncJob.requeue),
            status=case((running | queued, SyncJob.status), else_=JobStatus.queued.value),
            run_after=case((running | queued, SyncJob.run_after), else_=now),
            force=true(),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _unnest(*columns: tuple[str, TypeEngine[Any]]) -> TableValuedAlias:
    """`unnest($1::t1[], $2::t2[], ...) AS v(c1, c2, ...)`: a batch's rows bound as one array
    per column (PostgreSQL). The rows go in with a fixed number of parameters, so the driver
    and SQLAlchemy handle a handful of lists instead of every row's every value."""
    return (
        func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in columns))
        .table_valued(*(column(name, kind) for name, kind in columns))
        .render_derived(name="v")
    )


_TEXT, _INT, _BIGINT, _AT = Text(), Integer(), BigInteger(), DateTime(timezone=True)
_LOG_ROWS = _unnest(
    ("entity_id", _TEXT),
    ("crm_id", _TEXT),
    ("action", _TEXT),
    ("status", _TEXT),
    ("http_status", _INT),
    ("request", _TEXT),  # JSON text, serialised once
    ("response", _TEXT),
    ("error", _TEXT),
    ("duration_ms", Float()),
    ("attempt", _INT),
    ("job_id", _BIGINT),
    ("bulk_id", _TEXT),
)
# The batch's sync-log rows in one statement (binds: created_at, provider, entity_type and one
# array per column of _LOG_ROWS); returns (job_id, id) per row.
PG_LOGS = (
    insert(LOGS)
    .from_select(
        ["created_at", "provider", "entity_type", *(c.name for c in _LOG_ROWS.c)],
        select(
            bindparam("created_at", type_=_AT),
            bindparam("provider", type_=_TEXT),
            bindparam("entity_type", type_=_TEXT),
            *(cast_(c, JSONB) if c.name in ("request", "response") else c for c in _LOG_ROWS.c),
        ).select_from(_LOG_ROWS),
    )
    .returning(LOGS.c.job_id, LOGS.c.id)
)

# SQLite: executemany (insertmanyvalues) of one cached statement, the JSON text bound as is.
SQLITE_LOGS = (
    insert(LOGS)
    .values(
        request=bindparam("request_json", type_=_TEXT),
        response=bindparam("response_json", type_=_TEXT),
    )
    .returning(LOGS.c.id, sort_by_parameter_order=True)
)


async def _insert_logs(
    session: AsyncSession,
    provider: str,
    kind: Kind,
    results: Sequence[Result],
    now: datetime,
) -> dict[int, int]:
    """The batch's sync-log rows (one per result with a log status); returns job id -> log
    id. Each request and response is redacted, then serialised to JSON once."""
    logged = [r for r in results if r.log_status is not None]
    if not logged:
        return {}
    columns: dict[str, list[Any]] = {c.name: [] for c in _LOG_ROWS.c}
    for r in logged:
        o, job = r.outcome, r.claimed.job
        columns["entity_id"].append(r.claimed.record.external_id)
        columns["crm_id"].append(o.crm_id if o else None)
        columns["action"].append((r.action if o or r.removed else Action.update).value)
        columns["status"].append(r.log_status.value)  # type: ignore[union-attr]
        columns["http_status"].append(o.http_status if o else None)
        columns["request"].append(json_dumps(redact(o.request)) if o else None)
        columns["response"].append(json_dumps(redact(o.response)) if o else None)
        columns["error"].append(r.error)
        columns["duration_ms"].append(r.duration_ms)
        columns["attempt"].append(job.attempts + job.deferrals + 1)
        columns["job_id"].append(job.id)
        columns["bulk_id"].append(job.bulk_id)
    if is_postgres(session):
        rows = await session.execute(
            PG_LOGS,
            {"created_at": now, "provider": provider, "entity_type": kind.value, **columns},
        )
        return {job_id: log_id for job_id, log_id in rows}
    columns["request_json"] = columns.pop("request")
    columns["response_json"] = columns.pop("response")
    params = [
        {
            "created_at": now,
            "provider": provider,
            "entity_type": kind.value,
            **{name: values[i] for name, values in columns.items()},
        }
        for i in range(len(logged))
    ]
    ids = await session.scalars(SQLITE_LOGS, params)
    return {r.claimed.job.id: log_id for r, log_id in zip(logged, ids, strict=True)}


_LINK_ROWS = _unnest(
    ("record_id", _BIGINT),
    ("crm_id", _TEXT),
    ("status", _TEXT),
    ("confirmed_hash", _TEXT),
    ("attempted_hash", _TEXT),
    ("last_synced_at", _AT),
    ("last_attempt_at", _AT),
    ("last_error", _TEXT),
    ("last_log_id", _BIGINT),
)
_LINK_COLUMNS = [c.name for c in _LINK_ROWS.c]


def _link_upsert(stmt: Any) -> Any:
    """The link upsert's rules, one set for both dialects."""
    new, old = stmt.excluded, LINKS.c
    return stmt.on_conflict_do_update(
        index_elements=["record_id", "provider"],
        set_={
            "crm_id": func.coalesce(new.crm_id, old.crm_id),
            "status": case((new.status == LinkStatus.pending.value, old.status), else_=new.status),
            "confirmed_hash": func.coalesce(new.confirmed_hash, old.confirmed_hash),
            "attempted_hash": new.attempted_hash,
            "last_synced_at": func.coalesce(new.last_synced_at, old.last_synced_at),
            "last_attempt_at": new.last_attempt_at,
            "last_error": new.last_error,
            "last_log_id": func.coalesce(new.last_log_id, old.last_log_id),
        },
    )


# PostgreSQL: the batch's links in one statement (binds: provider, one array per column).
PG_LINKS = _link_upsert(
    postgresql.insert(LINKS).from_select(
        ["provider", *_LINK_COLUMNS],
        select(bindparam("provider", type_=_TEXT), *_LINK_ROWS.c).select_from(_LINK_ROWS),
    )
)
# SQLite: executemany of one cached statement.
SQLITE_LINKS = _link_upsert(sqlite.insert(LINKS))


async def _upsert_links(
    session: AsyncSession,
    provider: str,
    results: Sequence[Result],
    log_ids: dict[int, int],
    now: datetime,
) -> None:
    rows: list[dict[str, Any]] = []
    for r in results:
        if r.removed and (r.outcome is not None or _gone(r)):
            rows.append(_removed_link(r, log_ids, now))
            continue
        if r.outcome is None:
            continue
        record = r.claimed.record
        ok = r.log_status is LogStatus.success
        final = r.status in (JobStatus.failed, JobStatus.dead)
        rows.append(
            {
                "record_id": record.id,
                "crm_id": r.outcome.crm_id,
                # "pending" here means: keep the link's status (a retry is still to come).
                "status": (
                    LinkStatus.synced if ok else LinkStatus.failed if final else LinkStatus.pending
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
    if is_postgres(session):
        columns = {name: [row[name] for row in rows] for name in _LINK_COLUMNS}
        await session.execute(PG_LINKS, {"provider": provider, **columns})
    else:
        await session.execute(SQLITE_LINKS, [{"provider": provider, **row} for row in rows])


def _gone(r: Result) -> bool:
    """A delete the provider confirmed, or had nothing to do for."""
    return r.removed and r.log_status in (LogStatus.success, LogStatus.skipped)


def _removed_link(r: Result, log_ids: dict[int, int], now: datetime) -> dict[str, Any]:
    """A delete's link row: `deleted` once the provider confirmed it (or had nothing to
    delete), `failed` when it refused for good; the CRM id is kept (a record POSTed again is
    created anew, not updated)."""
    gone = _gone(r)
    final = r.status in (JobStatus.failed, JobStatus.dead)
    status = LinkStatus.deleted if gone else LinkStatus.failed if final else LinkStatus.pending
    return {
        "record_id": r.claimed.record.id,
        "crm_id": None,
        "status": status.value,
        "confirmed_hash": None,
        "attempted_hash": r.claimed.record.content_hash,
        "last_synced_at": now if gone else None,
        "last_attempt_at": now,
        "last_error": None if gone else r.error,
        "last_log_id": log_ids.get(r.claimed.job.id),
    }


_JOB_ROWS = _unnest(
    ("jid", _BIGINT),
    ("token", _TEXT),
    ("st", _TEXT),
    ("settles", Boolean()),
    ("after", _AT),
    ("att", _INT),
    ("dfr", _INT),
    ("err", _TEXT),
    ("since", _AT),
)
_JOB_COLUMNS = [c.name for c in _JOB_ROWS.c]


def _job_verdicts(v: Any) -> Any:
    """The verdicts' UPDATE, its rules in one place for both dialects; `v` names each row's
    values (jid, token, st, settles, after, att, dfr, err, since), `now` is bound."""
    jobs = JOBS.c
    at = bindparam("now", type_=UTCDateTime())
    # New content (or its parent's CRM id) arrived while this job ran: it goes round again.
    again = and_(jobs.requeue, v.settles)
    return (
        update(JOBS)
        .where(jobs.id == v.jid, jobs.lease_token == v.token)
        .values(
            status=case((again, JobStatus.queued.value), else_=v.st),
            run_after=case((again, at), else_=v.after),
            attempts=case((again, 0), else_=v.att),
            deferrals=case((again, 0), else_=v.dfr),
            requeue=False,
            force=case((again, jobs.force), else_=False),
            failing_since=case((again, None), else_=v.since),
            last_error=v.err,
            lease_token=None,
            lease_until=None,
            updated_at=at,
        )
    )


# PostgreSQL: one UPDATE ... FROM unnest(...) for the batch.
PG_JOBS = _job_verdicts(_JOB_ROWS.c)
# SQLite: executemany, a per-row WHERE (the lease token) being a Core feature. (`settles` is
# bound per row: an expanding IN cannot be used with executemany.)
SQLITE_JOBS = _job_verdicts(
    SimpleNamespace(
        jid=bindparam("jid"),
        token=bindparam("token"),
        st=bindparam("st"),
        settles=bindparam("settles", type_=Boolean()),
        after=bindparam("after", type_=UTCDateTime()),
        att=bindparam("att"),
        dfr=bindparam("dfr"),
        err=bindparam("err"),
        since=bindparam("since", type_=UTCDateTime()),
    )
)


async def _update_jobs(session: AsyncSession, results: Sequence[Result], now: datetime) -> None:
    rows = [
        {
            "jid": r.claimed.job.id,
            "token": r.claimed.job.lease_token,
            "st": r.status.value,
            "settles": r.status in SETTLES,
            "after": r.run_after or now,
            "att": r.attempts,
            "dfr": r.deferrals,
            "err": None if r.status is JobStatus.done else r.error,
            "since": None if r.status is JobStatus.done else r.failing_since,
        }
        # In job id order, as _wake_children locks: two workers' writes never wait in a circle.
        for r in sorted(results, key=lambda r: r.claimed.job.id)
    ]
    if is_postgres(session):
        columns = {name: [row[name] for row in rows] for name in _JOB_COLUMNS}
        await session.execute(PG_JOBS, {"now": now, **columns})
    else:
        await session.execute(SQLITE_JOBS, [{"now": now, **row} for row in rows])


async def _wake_children(
    session: AsyncSession,
    provider: str,
    kind: Kind,
    delivered: Iterable[Snapshot],
    now: datetime,
) -> None:
    """Children waiting for these records go now. A child being judged at this very moment
    is flagged to go round again, so its 'waiting' verdict cannot swallow this wake-up."""
    ids = [r.external_id for r in delivered]
    if not ids:
        return
    locked = list(
        await session.scalars(
            CHILD_JOBS[session.get_bind().dialect.name],
            {"provider": provider, "kind": kind.value, "parents": ids},
        )
    )
    if not locked:
        return
    await wake_jobs(session, locked, now)
