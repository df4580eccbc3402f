"""What a sync request asks of the pipeline: accept durably, wait a little for delivery, report."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.db import transaction
from app.deps import Services
from app.errors import NotFound
from app.records import SPECS, Kind
from app.sync.service import ProviderState, accept, load_record, record_states
from app.webhooks.inbox import requeue_unmatched_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: dict[str, Any]


def status_url(kind: Kind, external_id: str) -> str:
    return f"/api/crm/sync/{kind.value}?{urlencode({SPECS[kind].id_field: external_id})}"


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def overall(states: list[ProviderState]) -> str:
    if any(s.status == "failed" for s in states):
        return "failed"
    if all(s.status == "synced" for s in states):
        return "synced"
    return "pending"


def describe(kind: Kind, external_id: str, states: list[ProviderState]) -> dict[str, Any]:
    """The status view: the first provider's CRM id is the record's `crmId`."""
    primary = states[0]
    failed = next((s for s in states if s.status == "failed"), None)
    return {
        SPECS[kind].id_field: external_id,
        "crmId": primary.crm_id,
        "syncStatus": overall(states),
        "lastSyncedAt": _iso(primary.last_synced_at),
        "lastError": (failed or primary).last_error
        if failed or primary.status != "synced"
        else None,
        "providers": {
            s.provider: {
                "crmId": s.crm_id,
                "status": s.status,
                "lastSyncedAt": _iso(s.last_synced_at),
                "lastError": s.last_error,
            }
            for s in states
        },
    }


async def record_status(services: Services, kind: Kind, external_id: str) -> dict[str, Any]:
    async with services.sessions() as session:
        record = await load_record(session, kind, external_id)
        if record is None:
            raise NotFound(f"{SPECS[kind].label} {external_id} is not known here")
        states = await record_states(session, record, services.settings.providers)
    return describe(kind, external_id, states)


async def sync_record(
    services: Services, kind: Kind, fields: dict[str, Any], *, respond_async: bool
) -> Reply:
    settings = services.settings
    label = SPECS[kind].label
    async with transaction(services.sessions) as session:
        accepted = await accept(
            session, kind, fields, settings.providers, settings.phone_default_region
        )
        record = accepted.record
        # Stripe events that named this owner (or its customer id) before we knew it.
        requeued = await requeue_unmatched_for(session, kind, record)
        states = await record_states(session, record, settings.providers)
    if requeued:
        services.wake_stripe()
    external_id = record.external_id
    log.info(
        "accepted %s/%s: %d job(s) queued",
        kind.value,
        external_id,
        accepted.enqueued,
        extra={"record": f"{kind.value}/{external_id}"},
    )
    if accepted.enqueued:
        services.kick()
        if not respond_async:
            states = await _wait_settled(services, kind, external_id, settings.sync_wait_seconds)
    view = describe(kind, external_id, states)
    status = view["syncStatus"]
    if status == "synced":
        message = (
            f"{label} synced to CRM successfully"
            if accepted.enqueued
            else f"{label} already synced to CRM"
        )
        return Reply(200, {"success": True, "message": message, **view})
    if status == "failed" and all(s.settled for s in states):
        failed = next(s for s in states if s.status == "failed")
        return Reply(
            502,
            {
                "success": False,
                "error": (
                    f"{failed.provider} rejected {label.lower()} {external_id}: {failed.last_error}"
                ),
                "syncLogId": failed.last_log_id,
                **view,
            },
        )
    return Reply(
        202,
        {
            "success": True,
            "message": f"{label} sync accepted; delivery in progress",
            "statusUrl": status_url(kind, external_id),
            **view,
        },
    )


async def _wait_settled(
    services: Services, kind: Kind, external_id: str, wait_seconds: float
) -> list[ProviderState]:
    """Until every provider has an outcome for this content, or the wait is over. Woken by the
    in-process worker; polls too, so a separate worker process is seen as well."""
    deadline = time.monotonic() + wait_seconds
    while True:
        async with services.sessions() as session:
            record = await load_record(session, kind, external_id)
            assert record is not None
            states = await record_states(session, record, services.settings.providers)
        remaining = deadline - time.monotonic()
        if all(s.settled for s in states) or remaining <= 0:
            return states
        await services.notifier.wait(min(remaining, 0.25))
        await asyncio.sleep(0)
