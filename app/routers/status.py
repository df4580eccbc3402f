"""GET /api/crm/status: each provider's connection, last sync, queue depth and failures."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ServicesDep, SyncAuth
from app.ops.status import CrmStatus, provider_status
from app.routers.answers import AUTHED, COMMON

router = APIRouter(
    prefix="/api/crm", tags=["status"], dependencies=[SyncAuth], responses=COMMON | AUTHED
)
routers = [router]


@router.get("/status", response_model=CrmStatus, summary="Each provider's health and queue")
async def crm_status(services: ServicesDep) -> CrmStatus:
    return await provider_status(services)
