"""POST /api/webhooks/stripe (signed by Stripe), and the ops views of the webhook inbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.deps import OpsAuth, ServicesDep
from app.webhooks import api
from app.webhooks.models import EventStatus

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])
ops_router = APIRouter(prefix="/api/webhooks/events", tags=["webhooks"], dependencies=[OpsAuth])


@router.post(
    "/stripe",
    summary="Receive a Stripe event",
    description=(
        "Checked against STRIPE_WEBHOOK_SECRET (Stripe-Signature, 300 s tolerance), stored once "
        "by event id and answered 200 at once; processing follows. 400 for a missing, wrong or "
        "stale signature or a body that is not a Stripe event (nothing stored); 404 when no "
        "secret is configured."
    ),
    responses={400: {}, 404: {}},
)
async def stripe_webhook(request: Request, services: ServicesDep) -> dict[str, Any]:
    return await api.receive_stripe(services, await request.body(), request.headers)


@ops_router.get("", summary="Webhook events in the inbox, newest first")
async def list_events(
    services: ServicesDep,
    status: EventStatus | None = None,
    event_type: Annotated[
        str | None, Query(alias="type", description="e.g. invoice.payment_failed")
    ] = None,
    ownerId: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(description="nextCursor of the previous page")] = None,
) -> dict[str, Any]:
    return await api.list_events(services, status, event_type, ownerId, limit, cursor)


@ops_router.get("/{ref}", summary="One event (our id or Stripe's evt_ id), with its body")
async def show_event(ref: str, services: ServicesDep) -> dict[str, Any]:
    return await api.show_event(services, ref)


@ops_router.post("/{ref}/replay", summary="Process an event again (e.g. unmatched or failed)")
async def replay_event(ref: str, services: ServicesDep) -> dict[str, Any]:
    return await api.replay_event(services, ref)
