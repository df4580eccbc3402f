"""GET /api/crm/status: each provider's connection, last sync, queue depth and failures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ServicesDep, SyncAuth
from app.sync.status import provider_status

router = APIRouter(prefix="/api/crm", tags=["status"], dependencies=[SyncAuth])


@router.get("/status")
async def crm_status(services: ServicesDep) -> dict[str, Any]:
    return await provider_status(services)
