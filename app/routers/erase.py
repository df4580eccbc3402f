"""POST /api/crm/erase and GET /api/crm/erase/{erasureId} (ops): forget a person everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from app.deps import OpsAuth, ServicesDep
from app.ops.erase import EraseAnswer, EraseRequest, describe, get_erasure
from app.ops.erase_runs import Erasures
from app.routers.body import documented, json_body

router = APIRouter(prefix="/api/crm", tags=["erase"], dependencies=[OpsAuth])
routers = [router]


def get_erasures(request: Request) -> Erasures:
    erasures: Erasures = request.app.state.erasures
    return erasures


ErasuresDep = Annotated[Erasures, Depends(get_erasures)]

_EXAMPLE = {
    "success": True,
    "message": "Erasure completed",
    "erasureId": "erase_20261130100000_1a2b3c4d",
    "status": "completed",
    "emailHash": "5d41402abc4b2a76b9719d911017c592...",
    "counts": {"records": 4, "leads": 1, "sync_log": 9, "webhook_events": 1},
    "providers": {"hubspot": {"erased": 4, "failed": 0, "pending": 0}},
    "error": None,
    "createdAt": "2026-11-30T10:00:00Z",
    "finishedAt": "2026-11-30T10:00:04Z",
    "statusUrl": "/api/crm/erase/erase_20261130100000_1a2b3c4d",
}


@router.post(
    "/erase",
    response_model=EraseAnswer,
    summary="Erase a person everywhere (by email and/or userId)",
    responses={
        200: {"description": "done", "content": {"application/json": {"example": _EXAMPLE}}},
        202: {"description": "still running (or Prefer: respond-async)", "model": EraseAnswer},
        422: {"description": "neither email nor userId, or a malformed one"},
        503: {"description": "ERASURE_HASH_KEY is not set"},
    },
    openapi_extra=documented(EraseRequest),
)
async def erase(
    body: Annotated[EraseRequest, Depends(json_body(EraseRequest))],
    request: Request,
    services: ServicesDep,
    erasures: ErasuresDep,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Deletes every record that names the person at every CRM (the owner, with their
    membership, notes and activities; the guest of enquiries and bookings, whose other fields
    are kept), with HubSpot's GDPR delete for contacts; then scrubs the person from every store
    kept here and leaves an audit row without personal data. Waits up to BULK_WAIT_SECONDS and
    answers the counts per store (200), or 202 with statusUrl while it runs."""
    erasure = await erasures.start(
        services.settings, body, requested_by=getattr(request.state, "api_key", None)
    )
    if not (prefer and "respond-async" in prefer.lower()):
        await erasures.wait(erasure.id, services.settings.bulk.wait_seconds)
    async with services.sessions() as session:
        answer = describe(await get_erasure(session, erasure.id))
    return JSONResponse(answer.model_dump(), 200 if answer.status == "completed" else 202)


@router.get(
    "/erase/{erasureId}",
    response_model=EraseAnswer,
    summary="An erasure's progress, then its audit row",
    responses={404: {"description": "unknown erasure"}},
)
async def erasure_status(erasureId: str, services: ServicesDep) -> EraseAnswer:
    async with services.sessions() as session:
        return describe(await get_erasure(session, erasureId))
