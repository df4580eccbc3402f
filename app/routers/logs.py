"""GET /api/crm/sync/logs and POST /api/crm/sync/retry (ops)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from app.db import transaction
from app.deps import OpsAuth, ServicesDep
from app.inputs import MAX_ID
from app.models import LogStatus
from app.ops.logs import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    LogFilter,
    check_provider,
    decode_cursor,
    find_logs,
    log_view,
    parse_kind,
    parse_since,
    retry_jobs,
)
from app.ops.schemas import Retried, SyncLogPage
from app.routers.answers import AUTHED, BODY, COMMON
from app.routers.body import JsonBodyRoute, example_body
from app.routers.params import Text

router = APIRouter(
    prefix="/api/crm/sync",
    tags=["logs"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


@router.get("/logs", response_model=SyncLogPage, summary="The sync log, newest first")
async def sync_logs(
    services: ServicesDep,
    entityType: Annotated[Text | None, Query(description="owner, property, ...")] = None,
    entityId: Annotated[Text | None, Query(description="the website id")] = None,
    provider: Text | None = None,
    status: LogStatus | None = None,
    since: Annotated[Text | None, Query(description="ISO 8601 time or an age: 24h")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[Text | None, Query(description="nextCursor of the page before")] = None,
    jobId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    bulkId: Text | None = None,
) -> SyncLogPage:
    """Each row with its request and response payloads (secrets redacted). Follow
    `nextCursor` for older rows; it is null on the last page."""
    wanted = LogFilter(
        entity_type=parse_kind(entityType),
        entity_id=entityId,
        provider=provider,
        status=status,
        since=parse_since(since) if since else None,
        job_id=jobId,
        bulk_id=bulkId,
        limit=limit,
        before=decode_cursor(cursor) if cursor else None,
    )
    async with services.sessions() as session:
        page = await find_logs(session, wanted)
    return SyncLogPage(
        count=len(page.rows), logs=[log_view(row) for row in page.rows], nextCursor=page.next_cursor
    )


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["failed", "dead"] = Field(
        description="failed: a CRM rejected it; dead: failing past the retry horizon"
    )
    entityType: Text | None = Field(None, description="only this record kind")
    entityId: Text | None = Field(None, description="only this record (website id)")
    provider: Text | None = Field(None, description="only jobs for this provider")
    reason: Text | None = Field(
        None, description="only jobs whose last error is exactly this (a group of /failures)"
    )


RetryBody = Annotated[
    RetryRequest,
    Body(
        openapi_examples=example_body(
            every_dead_job={"status": "dead"},
            one_owner_at_one_provider={
                "status": "failed",
                "entityType": "owner",
                "entityId": "user_123abc",
                "provider": "mock",
            },
        )
    ),
]


@router.post(
    "/retry", response_model=Retried, summary="Requeue failed or dead jobs", responses=BODY
)
async def retry(body: RetryBody, services: ServicesDep) -> Retried:
    """Matching jobs go back to the queue with their attempts reset; answers how many."""
    kind = parse_kind(body.entityType)
    check_provider(body.provider, services.settings.providers)
    async with transaction(services.sessions) as session:
        requeued = await retry_jobs(
            session,
            [body.status],
            kind=kind,
            entity_id=body.entityId,
            provider=body.provider,
            reason=body.reason,
        )
    if requeued:
        services.kick()
    return Retried(
        message=f"{requeued} {body.status} job(s) requeued", requeued=requeued, status=body.status
    )
