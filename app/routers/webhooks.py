"""POST /api/webhooks/stripe and /hubspot (signed by their senders), and the ops views of the
webhook inbox: GET /api/webhooks/events, GET .../{id}, POST .../{id}/replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from app.db import transaction
from app.deps import OpsAuth, ServicesDep
from app.errors import NotFound
from app.pull import webhook as hubspot
from app.routers.answers import AUTHED, COMMON, errors
from app.routers.body import JsonBodyRoute
from app.routers.params import Cursor, PageLimit, RowId, Text
from app.webhooks import inbox
from app.webhooks.models import EventStatus
from app.webhooks.service import (
    EventDetail,
    EventPage,
    Replayed,
    Source,
    StripeReceived,
    list_events,
    receive_stripe,
    replay_event,
    show_event,
)

router = APIRouter(
    prefix="/api/webhooks",
    tags=["webhooks"],
    route_class=JsonBodyRoute,
    responses=errors(400, 404, 413, 503),
)
ops_router = APIRouter(
    prefix="/api/webhooks/events",
    tags=["webhooks"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router, ops_router]


# Documented by hand: these routes read the raw body, since its signature covers the bytes.
STRIPE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object", "description": "a Stripe event, exactly as sent"},
            "example": {
                "id": "evt_1QxYz2AbCdEf",
                "object": "event",
                "type": "invoice.payment_failed",
                "created": 1763700000,
                "data": {"object": {"object": "invoice", "customer": "cus_123"}},
            },
        }
    },
}
HUBSPOT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"type": "object"}},
            "example": [
                {
                    "eventId": 1001,
                    "subscriptionType": "contact.propertyChange",
                    "objectId": 1207,
                    "propertyName": "phone",
                    "occurredAt": 1763700000000,
                }
            ],
        }
    },
}


class HubSpotReceived(BaseModel):
    success: bool = True
    received: int = Field(description="events in the delivery")
    new: int = Field(description="events not already in the inbox")


@router.post(
    "/stripe",
    response_model=StripeReceived,
    summary="Receive a Stripe event",
    description=(
        "Checked against STRIPE_WEBHOOK_SECRET (Stripe-Signature, 300 s tolerance), stored once "
        "by event id and answered 200 at once; processing follows. 400 for a missing, wrong or "
        "stale signature or a body that is not a Stripe event (nothing stored); 404 when no "
        "secret is configured."
    ),
    openapi_extra={"requestBody": STRIPE_BODY},
)
async def stripe_webhook(request: Request, services: ServicesDep) -> StripeReceived:
    return await receive_stripe(services, await request.body(), request.headers)


@router.post(
    "/hubspot",
    response_model=HubSpotReceived,
    summary="Receive HubSpot webhook events",
    description=(
        "Checked with X-HubSpot-Signature-v3 and HUBSPOT_APP_SECRET (the URI signed is "
        "PUBLIC_BASE_URL + path when set, else the request's own URL); 401 for a wrong, missing "
        "or stale (over 5 minutes) signature; 404 when no secret is configured. Events are "
        "stored once by eventId; the contacts they name are then read in one batch and merged."
    ),
    responses=errors(401),
    openapi_extra={"requestBody": HUBSPOT_BODY},
)
async def hubspot_webhook(request: Request, services: ServicesDep) -> HubSpotReceived:
    settings = services.settings
    secret = settings.hubspot.app_secret
    if secret is None or not secret.get_secret_value().strip():
        raise NotFound("HubSpot webhooks are not configured here (HUBSPOT_APP_SECRET)")
    body = await request.body()
    if settings.public_base_url is not None:
        uri = str(settings.public_base_url).rstrip("/") + request.url.path
        if request.url.query:
            uri += "?" + request.url.query
    else:
        uri = str(request.url)
    hubspot.verify_v3(secret.get_secret_value(), request.method, uri, body, request.headers)
    events = hubspot.incoming(body)
    kept = inbox.headers_to_keep(request.headers, hubspot.UNSTORED_HEADERS)
    async with transaction(services.sessions) as session:
        new = await inbox.store(session, events, kept)
    if any(new):
        services.wake_inbox()
    return HubSpotReceived(received=len(events), new=sum(new))


@ops_router.get("", response_model=EventPage, summary="Webhook events in the inbox, newest first")
async def events(
    services: ServicesDep,
    source: Source | None = None,
    status: EventStatus | None = None,
    event_type: Annotated[
        Text | None, Query(alias="type", description="e.g. invoice.payment_failed")
    ] = None,
    ownerId: Annotated[Text | None, Query(description="the website's user id")] = None,
    eventId: Annotated[Text | None, Query(description="the source's id")] = None,
    limit: PageLimit = 50,
    cursor: Cursor | None = None,
) -> EventPage:
    return await list_events(
        services,
        source=source,
        status=status,
        event_type=event_type,
        owner_id=ownerId,
        event_id=eventId,
        limit=limit,
        cursor=cursor,
    )


@ops_router.get(
    "/{id}",
    response_model=EventDetail,
    summary="One event (our id), with its body",
    responses=errors(404),
)
async def event(id: RowId, services: ServicesDep) -> EventDetail:
    return await show_event(services, id)


@ops_router.post(
    "/{id}/replay",
    response_model=Replayed,
    summary="Handle an event again (e.g. unmatched)",
    responses=errors(404),
)
async def replay(id: RowId, services: ServicesDep) -> Replayed:
    return await replay_event(services, id)
