"""What the ops endpoints answer, as models: bulk runs, the sync log, retries."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.models import LogStatus


class BulkStarted(BaseModel):
    """202 from POST /api/crm/sync/bulk: the run is queued; poll `statusUrl`."""

    success: bool = True
    message: str = "Bulk sync started"
    bulkId: str
    statusUrl: str


class KindResults(BaseModel):
    """One kind's deliveries in a run, per (record, provider): total = synced + failed +
    skipped + pending + superseded; created and updated split synced."""

    total: int
    synced: int
    created: int
    updated: int
    failed: int
    skipped: int
    pending: int
    superseded: int


class BulkProgress(BaseModel):
    queueing: bool = Field(description="still walking the records and queueing jobs")
    total: int
    done: int
    pending: int


class BulkView(BaseModel):
    """A bulk run: never plain success when a delivery failed."""

    success: bool
    message: str
    bulkId: str
    status: Literal["queued", "enqueueing", "delivering", "completed", "failed"]
    syncType: str
    onlyFailed: bool
    force: bool
    providers: list[str]
    progress: BulkProgress
    waitingForParent: int = Field(
        0,
        description="pending deliveries waiting for a parent that is not synced and not queued "
        "at that provider: they go once the parent is sent (or retried)",
    )
    results: dict[str, KindResults] = Field(description="by kind, plural: owners, properties...")
    error: str | None = Field(description="why the run itself broke (status failed)")
    createdAt: str | None
    startedAt: str | None
    finishedAt: str | None
    statusUrl: str


class BulkRunList(BaseModel):
    success: bool = True
    runs: list[BulkView] = Field(description="newest first")


class LogRow(BaseModel):
    """One delivery attempt or skip, with its payloads (secrets redacted)."""

    id: int
    createdAt: str | None
    provider: str
    entityType: str
    entityId: str
    crmId: str | None
    action: str
    status: LogStatus
    httpStatus: int | None
    error: str | None
    durationMs: float | None
    attempt: int
    jobId: int | None
    bulkId: str | None
    request: Any = Field(description="what was sent (JSON)")
    response: Any = Field(description="what came back (JSON)")


class SyncLogPage(BaseModel):
    success: bool = True
    count: int
    logs: list[LogRow]
    nextCursor: str | None = Field(description="pass as `cursor` for older rows; null: last page")


class Retried(BaseModel):
    success: bool = True
    message: str = Field(examples=["2 dead job(s) requeued"])
    requeued: int
    status: Literal["failed", "dead"]
