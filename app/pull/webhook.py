"""HubSpot webhooks: the v3 signature checked, events stored once in the webhook inbox, the
contacts they name read in one batch and merged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.errors import AppError, Unauthorized
from app.pull.service import ContactSource, pull_ids
from app.settings import Settings
from app.sync.service import is_postgres
from app.webhooks.models import EventStatus, WebhookEvent

log = logging.getLogger(__name__)

SOURCE = "hubspot"
MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: reject a request whose timestamp is older than 5 minutes
SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
# HubSpot signs the URI with these characters decoded (its "Validating requests" page).
URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
# Events about a contact whose current state we should read.
CONTACT_EVENTS = {
    "contact.creation",
    "contact.propertyChange",
    "contact.restore",
    "contact.merge",
    "contact.associationChange",
    "object.creation",
    "object.propertyChange",
    "object.restore",
    "object.merge",
}
UNSTORED_HEADERS = frozenset({SIGNATURE_HEADER, "x-hubspot-signature", "authorization", "cookie"})


class BadHubSpotWebhook(AppError):
    status_code = 400


def decode_uri(uri: str) -> str:
    for encoded, plain in URI_DECODE.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    return uri


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)), as HubSpot computes it."""
    source = method.upper().encode() + decode_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_v3(
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    now_ms: int | None = None,
) -> None:
    """Raise Unauthorized unless the v3 signature is right and its timestamp is fresh."""
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise Unauthorized("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Unauthorized("X-HubSpot-Request-Timestamp: not epoch milliseconds") from None
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if now_ms - sent > MAX_AGE_MS:
        raise Unauthorized("X-HubSpot-Request-Timestamp: older than 5 minutes")
    if sent - now_ms > MAX_AGE_MS:
        raise Unauthorized("X-HubSpot-Request-Timestamp: in the future")
    expected = signature_v3(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise Unauthorized("X-HubSpot-Signature-v3: signature does not match")


def parse_events(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadHubSpotWebhook("body: not JSON", field="body") from None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list):
        raise BadHubSpotWebhook("body: a JSON array of events is expected", field="body")
    for n, event in enumerate(events):
        if not isinstance(event, dict):
            raise BadHubSpotWebhook(f"body[{n}]: an event object is expected", field=f"[{n}]")
        for name in ("eventId", "subscriptionType"):
            if event.get(name) in (None, ""):
                raise BadHubSpotWebhook(f"[{n}].{name}: required", field=f"[{n}].{name}")
    return events


def _occurred(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(event["occurredAt"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        return utcnow()


async def store(
    session: AsyncSession, events: list[dict[str, Any]], headers: Mapping[str, str]
) -> int:
    """Store each event once (by HubSpot's eventId); returns how many were new."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS}
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    new = 0
    for event in events:
        wanted = event["subscriptionType"] in CONTACT_EVENTS and event.get("objectId") is not None
        stmt = (
            insert(WebhookEvent)
            .values(
                source=SOURCE,
                external_id=str(event["eventId"]),
                type=str(event["subscriptionType"])[:128],
                headers=kept,
                body=json.dumps(event, separators=(",", ":")),
                event_created=_occurred(event),
                received_at=utcnow(),
                status=EventStatus.received if wanted else EventStatus.ignored,
                run_after=utcnow(),
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(WebhookEvent.id)
        )
        if await session.scalar(stmt) is not None:
            new += 1
    return new


async def process_pending(
    sessions: async_sessionmaker[AsyncSession], source: ContactSource, settings: Settings
) -> int:
    """Read the contacts named by stored, unprocessed HubSpot events and merge them; the events
    are marked processed once the merge is committed. Returns how many events were handled."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(WebhookEvent.id, WebhookEvent.body)
                .where(
                    WebhookEvent.source == SOURCE,
                    WebhookEvent.status == EventStatus.received.value,
                )
                .order_by(WebhookEvent.id)
                .limit(1000)
            )
        ).all()
    if not rows:
        return 0
    ids = [str(json.loads(body)["objectId"]) for _, body in rows]
    try:
        await pull_ids(sessions, source, settings, ids)
    except Exception as exc:
        async with sessions() as session, session.begin():
            await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_([r[0] for r in rows]))
                .values(attempts=WebhookEvent.attempts + 1, reason=str(exc)[:500])
            )
        raise
    async with sessions() as session, session.begin():
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_([r[0] for r in rows]))
            .values(status=EventStatus.processed.value, processed_at=utcnow())
        )
    return len(rows)
