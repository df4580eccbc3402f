"""HubSpot's side of the webhook inbox: the v3 signature checked, a delivery read into inbox
rows, and the handler that reads the contacts they name in one batch and merges them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction, utcnow
from app.errors import AppError, Unauthorized
from app.inputs import UnreadableJson, loads, problem
from app.providers.base import ProviderError
from app.pull.deletions import erase, fold, mark_deleted
from app.pull.service import ContactSource, pull_ids
from app.settings import Settings
from app.webhooks.inbox import Handled, Incoming
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
# Events that change which contacts exist: handled from the event itself (and, for a merge, a
# read of the survivor). `object.*` events are these only for contacts (objectTypeId 0-1).
DELETION = {"contact.deletion", "object.deletion"}
PRIVACY_DELETION = {"contact.privacyDeletion", "object.privacyDeletion"}
MERGE = {"contact.merge", "object.merge"}
CONTACT_TYPE_ID = "0-1"
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
    """The delivery's events; 400 naming the field for a body that is not JSON, a value no
    store can hold (app.inputs), or an event without eventId or subscriptionType."""
    try:
        events = loads(body)
    except UnreadableJson as exc:
        raise BadHubSpotWebhook(exc.message, field="body") from None
    if found := problem(events):
        raise BadHubSpotWebhook(f"{found[0]}: {found[1]}", field=found[0])
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


def incoming(body: bytes) -> list[Incoming]:
    """The delivery's events, ready to store in the inbox (by HubSpot's eventId)."""
    found = []
    for event in parse_events(body):
        kind = event["subscriptionType"]
        wanted = (
            kind in CONTACT_EVENTS | DELETION | PRIVACY_DELETION
            and event.get("objectId") is not None
            and str(event.get("objectTypeId", CONTACT_TYPE_ID)) == CONTACT_TYPE_ID
        )
        found.append(
            Incoming(
                source=SOURCE,
                external_id=str(event["eventId"])[:255],
                type=str(event["subscriptionType"]),
                body=json.dumps(event, separators=(",", ":")),
                event_created=_occurred(event),
                handled=wanted,
            )
        )
    return found


def survivor_of(event: dict[str, Any]) -> tuple[str, list[str]]:
    """A merge event's surviving contact id and every id merged into it. HubSpot names the
    primary (`primaryObjectId`), the others (`mergedObjectIds`) and the id the merged contact
    has now (`newObjectId`, the primary's in today's merges; `objectId` otherwise)."""
    survivor = event.get("newObjectId") or event.get("primaryObjectId") or event["objectId"]
    named = [event.get("primaryObjectId"), event.get("objectId")]
    named += list(event.get("mergedObjectIds") or [])
    merged = [str(n) for n in dict.fromkeys(named) if n is not None and str(n) != str(survivor)]
    return str(survivor), merged


class HubSpotHandler:
    """Handles stored HubSpot events, oldest first: deletions mark leads deleted, privacy
    deletions erase them (and the values stored events carried), merges fold leads into the
    survivor's; then the contacts the rest name (and each merge's survivor) are read in one
    batch and merged. HubSpot being down leaves the reading events for later, with backoff."""

    source = SOURCE
    batch_size = 500

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        contacts: ContactSource,
        settings: Settings,
    ) -> None:
        self.sessions = sessions
        self.contacts = contacts
        self.settings = settings

    async def handle(self, events: Sequence[WebhookEvent]) -> dict[int, Handled]:
        verdicts: dict[int, Handled] = {}
        to_read: dict[int, str] = {}  # row id -> the contact to read
        async with transaction(self.sessions) as session:
            for row in events:
                event = json.loads(row.body)
                kind, contact = event["subscriptionType"], str(event["objectId"])
                if kind in DELETION:
                    marked = await mark_deleted(session, SOURCE, [contact])
                    verdicts[row.id] = Handled(
                        EventStatus.processed, f"{marked} lead(s) marked deleted"
                    )
                elif kind in PRIVACY_DELETION:
                    erased = await erase(session, SOURCE, [contact])
                    verdicts[row.id] = Handled(
                        EventStatus.processed,
                        f"erased: {erased.leads} lead(s); values blanked in "
                        f"{erased.events} stored event(s)",
                    )
                elif kind in MERGE:
                    survivor, merged = survivor_of(event)
                    await fold(session, SOURCE, survivor, merged)
                    to_read[row.id] = survivor
                else:
                    to_read[row.id] = contact
        if not to_read:
            return verdicts
        try:
            outcome = await pull_ids(
                self.sessions, self.contacts, self.settings, list(to_read.values())
            )
        except ProviderError as exc:
            wait = exc.retry_after if exc.retry_after is not None else 30.0
            return verdicts | {row_id: Handled.retry(str(exc)[:500], wait) for row_id in to_read}
        said = f"merged in pull run {outcome.run_id}"
        return verdicts | {row_id: Handled(EventStatus.processed, said) for row_id in to_read}
