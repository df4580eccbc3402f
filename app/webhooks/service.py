"""What the webhook routes ask: receive a Stripe or HubSpot delivery into the inbox, and the ops
views of the inbox (list, one event, replay)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.db import transaction
from app.errors import NotFound
from app.runtime import Services
from app.times import iso
from app.webhooks import inbox
from app.webhooks.models import EventStatus, WebhookEvent
from app.webhooks.stripe_handler import headers_of, verify

Source = Literal["stripe", "hubspot"]


class StripeReceived(BaseModel):
    success: bool = True
    received: bool = True
    eventId: str = Field(description="Stripe's event id")
    status: EventStatus = Field(description="received (to be processed) or ignored")
    duplicate: bool = Field(description="this event was already in the inbox")


class EventView(BaseModel):
    """One inbox row. `id` is ours (use it to address the event); `eventId` is the source's."""

    id: int
    source: Source
    eventId: str
    type: str
    status: EventStatus
    reason: str | None
    attempts: int
    ownerId: str | None
    customerId: str | None
    created: str | None = Field(description="the event's own time (ISO 8601)")
    receivedAt: str | None
    processedAt: str | None


class EventDetail(EventView):
    headers: dict[str, Any]
    body: Any = Field(description="the event as received")


class EventPage(BaseModel):
    events: list[EventView]
    counts: dict[str, int] = Field(description="events by status (of the source filtered on)")
    nextCursor: int | None = Field(description="pass as `cursor` for older events")


class Replayed(BaseModel):
    success: bool = True
    message: str
    event: EventView


def event_view(row: WebhookEvent) -> EventView:
    return EventView(
        id=row.id,
        source=row.source,
        eventId=row.external_id,
        type=row.type,
        status=EventStatus(row.status),
        reason=row.reason,
        attempts=row.attempts,
        ownerId=row.owner_id,
        customerId=row.customer_id,
        created=iso(row.event_created),
        receivedAt=iso(row.received_at),
        processedAt=iso(row.processed_at),
    )


def event_detail(row: WebhookEvent) -> EventDetail:
    try:
        body: Any = json.loads(row.body)
    except ValueError:
        body = row.body
    return EventDetail(**event_view(row).model_dump(), headers=row.headers, body=body)


async def receive_stripe(
    services: Services, body: bytes, headers: Mapping[str, str]
) -> StripeReceived:
    """Verify, store once, answer. Processing happens later, in the inbox processor."""
    secret = services.settings.stripe_webhook_secret
    if secret is None or not secret.get_secret_value().strip():
        raise NotFound("Stripe webhooks are not configured here (STRIPE_WEBHOOK_SECRET)")
    event = verify(body, headers.get("stripe-signature"), secret.get_secret_value())
    async with transaction(services.sessions) as session:
        [new] = await inbox.store(session, [event], headers_of(headers))
    if event.handled and new:
        services.wake_inbox()
    return StripeReceived(
        eventId=event.external_id,
        status=EventStatus.received if event.handled else EventStatus.ignored,
        duplicate=not new,
    )


async def list_events(
    services: Services,
    *,
    source: Source | None,
    status: EventStatus | None,
    event_type: str | None,
    owner_id: str | None,
    event_id: str | None,
    limit: int,
    cursor: int | None,
) -> EventPage:
    async with services.sessions() as session:
        rows = await inbox.list_events(
            session,
            source=source,
            status=status,
            event_type=event_type,
            owner_id=owner_id,
            event_id=event_id,
            limit=limit,
            before=cursor,
        )
        counts = await inbox.count_by_status(session, source)
    return EventPage(
        events=[event_view(r) for r in rows],
        counts=counts,
        nextCursor=rows[-1].id if len(rows) == limit else None,
    )


async def inbox_counts(services: Services) -> dict[Source, dict[str, int]]:
    """Events by status for each source; `received` is the backlog still to be processed."""
    sources: tuple[Source, ...] = ("stripe", "hubspot")
    async with services.sessions() as session:
        return {source: await inbox.count_by_status(session, source) for source in sources}


async def show_event(services: Services, row_id: int) -> EventDetail:
    async with services.sessions() as session:
        return event_detail(await inbox.get_event(session, row_id))


async def replay_events(
    services: Services, ids: Sequence[int], *, by: str = "ops"
) -> list[WebhookEvent]:
    """Queue these events (our row ids) for handling again; 404 if one is not in the inbox."""
    async with transaction(services.sessions) as session:
        for row_id in ids:
            await inbox.get_event(session, row_id)
        await inbox.replay(session, ids=ids, by=by)
    services.wake_inbox()
    async with services.sessions() as session:
        return [await inbox.get_event(session, row_id) for row_id in ids]


async def replay_event(services: Services, row_id: int) -> Replayed:
    [row] = await replay_events(services, [row_id])
    return Replayed(
        message=f"{row.source} event {row.external_id} queued again", event=event_view(row)
    )
