"""What the webhook routes ask: receive a Stripe delivery, and the ops views of the inbox."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.db import transaction
from app.deps import Services
from app.errors import NotFound
from app.webhooks import inbox
from app.webhooks.models import EventStatus, WebhookEvent


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def event_view(row: WebhookEvent, *, detail: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "source": row.source,
        "eventId": row.external_id,
        "type": row.type,
        "status": row.status,
        "reason": row.reason,
        "attempts": row.attempts,
        "ownerId": row.owner_id,
        "customerId": row.customer_id,
        "created": _iso(row.event_created),
        "receivedAt": _iso(row.received_at),
        "processedAt": _iso(row.processed_at),
    }
    if detail:
        view["headers"] = row.headers
        try:
            view["body"] = json.loads(row.body)
        except ValueError:
            view["body"] = row.body
    return view


async def receive_stripe(
    services: Services, body: bytes, headers: Mapping[str, str]
) -> dict[str, Any]:
    """Verify, store once, answer. Processing happens later, in the Stripe processor."""
    secret = services.settings.stripe_webhook_secret
    if secret is None or not secret.get_secret_value().strip():
        raise NotFound("Stripe webhooks are not configured here (STRIPE_WEBHOOK_SECRET)")
    event = inbox.verify(body, headers.get("stripe-signature"), secret.get_secret_value())
    async with transaction(services.sessions) as session:
        received = await inbox.receive(session, body, headers, event)
    if received.status is EventStatus.received and not received.duplicate:
        services.wake_stripe()
    return {
        "success": True,
        "received": True,
        "eventId": received.event_id,
        "status": received.status.value,
        "duplicate": received.duplicate,
    }


async def list_events(
    services: Services,
    status: EventStatus | None,
    event_type: str | None,
    owner_id: str | None,
    limit: int,
    cursor: int | None,
) -> dict[str, Any]:
    async with services.sessions() as session:
        rows = await inbox.list_events(
            session,
            status=status,
            event_type=event_type,
            owner_id=owner_id,
            limit=limit,
            before=cursor,
        )
        counts = await inbox.count_by_status(session)
    return {
        "events": [event_view(r) for r in rows],
        "counts": counts,
        "nextCursor": rows[-1].id if len(rows) == limit else None,
    }


async def show_event(services: Services, ref: str) -> dict[str, Any]:
    async with services.sessions() as session:
        return event_view(await inbox.get_event(session, ref), detail=True)


async def replay_event(services: Services, ref: str) -> dict[str, Any]:
    async with transaction(services.sessions) as session:
        row = await inbox.get_event(session, ref)
        await inbox.replay(session, ids=[str(row.id)])
    services.wake_stripe()
    async with services.sessions() as session:
        row = await inbox.get_event(session, str(row.id))
    return {
        "success": True,
        "message": f"event {row.external_id} queued again",
        "event": event_view(row),
    }
