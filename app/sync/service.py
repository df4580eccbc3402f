"""What a sync request asks of the pipeline: accept durably, wait a little for delivery, answer
as the website expects (200 synced, 202 in flight, 502 refused)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db import transaction
from app.errors import NotFound
from app.records import SPECS, Kind
from app.runtime import Services
from app.sync.accept import Rejection, accept, accept_one, load_record, validate
from app.sync.accept_new import accept_new
from app.sync.deletes import mark_deleted
from app.sync.schemas import (
    BatchAnswer,
    ChildView,
    DeleteAnswer,
    RejectionView,
    SyncAnswer,
    SyncStatus,
    answer_model,
    delete_model,
)
from app.sync.status import ProviderState, describe, queued_state, record_states, status_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: SyncAnswer | DeleteAnswer


async def record_status(services: Services, kind: Kind, external_id: str) -> SyncStatus:
    """GET /api/crm/sync/{kind}: 404 for a record never sent."""
    async with services.sessions() as session:
        record = await load_record(session, kind, external_id)
        if record is None:
            raise NotFound(f"{SPECS[kind].label} {external_id} is not known here")
        states = await record_states(
            session, record.id, record.content_hash, services.settings.providers
        )
    return describe(kind, external_id, states)


async def _queued(
    services: Services,
    what: str,
    kind: Kind,
    external_id: str,
    record: tuple[int, str],
    queued: int,
    states: list[ProviderState],
    *,
    respond_async: bool,
) -> tuple[dict[str, Any], list[ProviderState]]:
    """After a sync or a delete queued `queued` jobs for `record` (its id and content hash): log
    it, wake the worker and, unless `respond_async`, wait up to SYNC_WAIT_SECONDS for every
    provider. The record's status view (as a dict for the answer model) and the states read."""
    log.info(
        "%s %s/%s: %d job(s) queued",
        what,
        kind.value,
        external_id,
        queued,
        extra={"record": f"{kind.value}/{external_id}"},
    )
    if queued:
        services.kick()
        if not respond_async:
            states = await _wait_settled(
                services, record[0], record[1], services.settings.sync_wait_seconds
            )
    return describe(kind, external_id, states).model_dump(), states


async def sync_record(
    services: Services, kind: Kind, fields: dict[str, Any], *, respond_async: bool
) -> Reply:
    """Accept one record (fields as its model dumped them), then wait up to SYNC_WAIT_SECONDS
    for every provider's outcome unless `respond_async`."""
    settings = services.settings
    label = SPECS[kind].label
    region = settings.phone_default_region
    first = await accept_new(services.engine, kind, fields, settings.providers, region)
    if first is not None:  # a record never seen: one statement, and nothing to read back
        stored, queued = first
        states = [queued_state(p) for p in settings.providers]
    else:
        async with transaction(services.sessions) as session:
            stored, queued = await accept_one(session, kind, fields, settings.providers, region)
            states = await record_states(
                session, stored.id, stored.content_hash, settings.providers
            )
    if kind in (Kind.owner, Kind.membership):
        services.wake_inbox()  # Stripe events waiting for this owner may be due now
    external_id = stored.external_id
    view, states = await _queued(
        services,
        "accepted",
        kind,
        external_id,
        (stored.id, stored.content_hash),
        queued,
        states,
        respond_async=respond_async,
    )
    answer = answer_model(kind)
    if view["syncStatus"] == "synced":
        message = (
            f"{label} synced to CRM successfully" if queued else f"{label} already synced to CRM"
        )
        return Reply(200, answer(success=True, message=message, **view))
    if view["syncStatus"] == "failed" and all(s.settled for s in states):
        failed = next(s for s in states if s.status == "failed")
        return Reply(
            502,
            answer(
                success=False,
                error=f"{failed.provider} rejected {label.lower()} {external_id}: "
                f"{failed.last_error}",
                syncLogId=failed.last_log_id,
                **view,
            ),
        )
    return Reply(
        202,
        answer(
            success=True,
            message=f"{label} sync accepted; delivery in progress",
            statusUrl=status_url(kind, external_id),
            **view,
        ),
    )


async def delete_record(
    services: Services, kind: Kind, external_id: str, *, cascade: bool, respond_async: bool
) -> Reply:
    """DELETE /api/crm/sync/{kind}: mark the record (with cascade, everything under it) deleted,
    queue its delete at every provider, then wait like a sync: 200 once every provider confirmed
    ("already deleted" when repeated), 202 in flight, 502 refused. Raises NotFound (never
    synced) or LiveChildren (409, naming them; `cascade` deletes them first)."""
    settings = services.settings
    label = SPECS[kind].label
    deleted: list[ChildView] = []
    async with transaction(services.sessions) as session:
        record = await load_record(session, kind, external_id, for_update=True)
        if record is None:
            raise NotFound(f"{label} {external_id} has not been synced; nothing to delete")
        queued = 0
        if record.deleted_at is None:
            marked = await mark_deleted(session, record, settings.providers, cascade=cascade)
            queued = marked.queued
            deleted = [ChildView(kind=k, id=i) for k, i in marked.records]
        states = await record_states(session, record.id, record.content_hash, settings.providers)
    view, states = await _queued(
        services,
        "delete of",
        kind,
        external_id,
        (record.id, record.content_hash),
        queued,
        states,
        respond_async=respond_async,
    )
    answer = delete_model(kind)
    if view["syncStatus"] == "deleted":
        message = f"{label} deleted from CRM" if queued else f"{label} already deleted"
        return Reply(200, answer(success=True, message=message, deleted=deleted, **view))
    if view["syncStatus"] == "failed" and all(s.settled for s in states):
        failed = next(s for s in states if s.status == "failed")
        return Reply(
            502,
            answer(
                success=False,
                error=f"{failed.provider} refused to delete {label.lower()} {external_id}: "
                f"{failed.last_error}",
                syncLogId=failed.last_log_id,
                deleted=deleted,
                **view,
            ),
        )
    return Reply(
        202,
        answer(
            success=True,
            message=f"{label} delete accepted; in progress",
            statusUrl=status_url(kind, external_id),
            deleted=deleted,
            **view,
        ),
    )


async def sync_batch(services: Services, kind: Kind, items: Sequence[Any]) -> BatchAnswer:
    """POST /api/crm/sync/{kind}/batch: each item validated as the one-record endpoint would;
    the accepted ones stored and queued in one transaction, each rejected one named."""
    settings = services.settings
    valid: list[tuple[int, dict[str, Any]]] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(items):
        checked = validate(kind, index, item)
        if isinstance(checked, Rejection):
            rejections.append(checked)
        else:
            valid.append((index, checked))
    async with transaction(services.sessions) as session:
        result = await accept(
            session, kind, valid, settings.providers, settings.phone_default_region
        )
    if result.queued:
        services.kick()
    if kind in (Kind.owner, Kind.membership):
        services.wake_inbox()
    rejections = sorted([*rejections, *result.rejections], key=lambda r: r.index)
    return BatchAnswer(
        success=not rejections,
        message=f"{result.accepted} {kind.value} record(s) accepted, {len(rejections)} rejected",
        accepted=result.accepted,
        rejected=len(rejections),
        queued=result.queued,
        rejections=[
            RejectionView(index=r.index, id=r.id, field=r.field, error=r.error) for r in rejections
        ],
    )


async def _wait_settled(
    services: Services, record_id: int, content_hash: str, wait_seconds: float
) -> list[ProviderState]:
    """Until every provider has an outcome for this content, or the wait is over. Woken by the
    in-process worker; polls too, so a separate worker process is seen as well."""
    deadline = time.monotonic() + wait_seconds
    while True:
        async with services.sessions() as session:
            states = await record_states(
                session, record_id, content_hash, services.settings.providers
            )
        remaining = deadline - time.monotonic()
        if all(s.settled for s in states) or remaining <= 0:
            return states
        await services.notifier.wait(min(remaining, 0.25))
        await asyncio.sleep(0)
