"""POST /api/crm/erase and GET /api/crm/erase/{erasureId} (ops): forget a person everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Request, Response

from app.deps import OpsAuth, ServicesDep
from app.ops.erase import EraseAnswer, EraseRequest, describe, get_erasure
from app.ops.erase_runs import Erasures
from app.routers.answers import AUTHED, BODY, COMMON, errors
from app.routers.body import JsonBodyRoute, example_body
from app.routers.params import PathText

router = APIRouter(
    prefix="/api/crm",
    tags=["erase"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


async def get_erasures(request: Request) -> Erasures:
    erasures: Erasures = request.app.state.erasures
    return erasures


ErasuresDep = Annotated[Erasures, Depends(get_erasures)]
EraseBody = Annotated[
    EraseRequest,
    Body(
        openapi_examples=example_body(
            by_email={"email": "john@example.com"},
            an_owner_by_user_id={"userId": "user_123abc"},
        )
    ),
]
_EXAMPLE = {
    "success": True,
    "message": "Erasure completed",
    "erasureId": "erase_20261130100000_1a2b3c4d",
    "status": "completed",
    "emailHash": "9f2c5b0e3d1a7c4b8e6f0a2d4c6e8b0a1c3e5f7a9b1d3f5a7c9e1b3d5f7a9c1e",
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
        **BODY,
        **errors(503),
    },
)
async def erase(
    body: EraseBody,
    request: Request,
    response: Response,
    services: ServicesDep,
    erasures: ErasuresDep,
    prefer: Annotated[str | None, Header(description="`respond-async`: answer 202 at once")] = None,
) -> EraseAnswer:
    """Deletes every record that names the person at every CRM (the owner, with their
    membership, notes and activities; the guest of enquiries and bookings, whose other fields
    are kept), with HubSpot's GDPR delete for contacts; then scrubs the person from every store
    kept here and leaves an audit row without personal data. Waits up to BULK_WAIT_SECONDS and
    answers the counts per store (200), or 202 with statusUrl while it runs. The audit
    row's emailHash is null unless ERASURE_HASH_KEY is set."""
    erasure = await erasures.start(
        services.settings, body, requested_by=getattr(request.state, "api_key", None)
    )
    if not (prefer and "respond-async" in prefer.lower()):
        await erasures.wait(erasure.id, services.settings.bulk.wait_seconds)
    async with services.sessions() as session:
        answer = describe(await get_erasure(session, erasure.id))
    response.status_code = 200 if answer.status == "completed" else 202
    return answer


@router.get(
    "/erase/{erasureId}",
    response_model=EraseAnswer,
    summary="An erasure's progress, then its audit row",
    responses=errors(404),
)
async def erasure_status(erasureId: PathText, services: ServicesDep) -> EraseAnswer:
    async with services.sessions() as session:
        return describe(await get_erasure(session, erasureId))
