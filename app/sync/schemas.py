"""The sync API's answers as models: what the website reads back about a record."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.records import SPECS, Kind

SyncStatusValue = Literal["pending", "synced", "failed", "deleted"]


class ProviderSyncStatus(BaseModel):
    """Where the record stands at one provider."""

    crmId: str | None = Field(description="the record's id in that CRM, once it has one")
    status: SyncStatusValue
    lastSyncedAt: str | None = Field(description="when that CRM last confirmed it (ISO 8601)")
    lastError: str | None = Field(description="the CRM's reason, when not synced")


class SyncStatus(BaseModel):
    """A record's sync status: the first provider's CRM id is `crmId`; `syncStatus` is
    `failed` if any provider failed it, `synced` if every provider confirmed it, `deleted` if
    every provider confirmed its delete."""

    model_config = ConfigDict(extra="allow")  # the kind's id field (userId, propertyId, ...)

    crmId: str | None
    syncStatus: SyncStatusValue
    lastSyncedAt: str | None
    lastError: str | None
    providers: dict[str, ProviderSyncStatus]


class SyncAnswer(SyncStatus):
    """The answer to POST /api/crm/sync/{kind}: the status, with what happened."""

    success: bool
    message: str | None = None
    statusUrl: str | None = Field(None, description="where to poll while delivery runs (202)")
    error: str | None = Field(None, description="the CRM's refusal (502)")
    syncLogId: int | None = Field(None, description="the sync-log row with the refusal (502)")


@cache
def status_model(kind: Kind) -> type[SyncStatus]:
    """SyncStatus with the kind's id field spelled out (for the OpenAPI document)."""
    id_field = SPECS[kind].id_field
    fields: dict[str, Any] = {id_field: (str, Field(description=f"the website's {id_field}"))}
    return create_model(f"{SPECS[kind].label}SyncStatus", __base__=SyncStatus, **fields)


@cache
def answer_model(kind: Kind) -> type[SyncAnswer]:
    id_field = SPECS[kind].id_field
    fields: dict[str, Any] = {id_field: (str, Field(description=f"the website's {id_field}"))}
    return create_model(f"{SPECS[kind].label}SyncAnswer", __base__=SyncAnswer, **fields)


class ChildView(BaseModel):
    """A live record under the one being deleted."""

    kind: str
    id: str


class DeleteAnswer(SyncStatus):
    """The answer to DELETE /api/crm/sync/{kind}: the status, with what happened."""

    success: bool
    message: str | None = None
    statusUrl: str | None = Field(None, description="where to poll while the delete runs (202)")
    error: str | None = Field(None, description="the CRM's refusal (502)")
    syncLogId: int | None = Field(None, description="the sync-log row with the refusal (502)")
    deleted: list[ChildView] = Field(
        default_factory=list, description="every record this delete removes, children first"
    )


class ConflictAnswer(BaseModel):
    """409: the record has live children; delete them first, or pass cascade=true."""

    success: Literal[False] = False
    error: str
    children: list[ChildView]


@cache
def delete_model(kind: Kind) -> type[DeleteAnswer]:
    id_field = SPECS[kind].id_field
    fields: dict[str, Any] = {id_field: (str, Field(description=f"the website's {id_field}"))}
    return create_model(f"{SPECS[kind].label}DeleteAnswer", __base__=DeleteAnswer, **fields)


class RejectionView(BaseModel):
    index: int = Field(description="position in the array sent")
    id: str | None = Field(description="the record's website id, when usable")
    field: str
    error: str


class BatchAnswer(BaseModel):
    success: bool = Field(description="every record was accepted")
    message: str
    accepted: int
    rejected: int
    queued: int = Field(description="jobs queued (a record already confirmed needs none)")
    rejections: list[RejectionView]
