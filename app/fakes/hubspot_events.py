"""The fake HubSpot's contact webhooks: events shaped as HubSpot's webhooks page documents them
(https://developers.hubspot.com/docs/api/webhooks: eventId, subscriptionId, portalId, appId,
occurredAt, subscriptionType, attemptNumber, objectId; a merge adds primaryObjectId,
mergedObjectIds, newObjectId, numberOfPropertiesMoved), signed with v3 and sent by
`POST /_fake/webhooks/contacts`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from app.fakes.common import CONTROL_PREFIX

PORTAL_ID = 62515
APP_ID = 54321
_event_ids = itertools.count(int(time.time()) * 1000)

ContactEventType = Literal[
    "contact.creation",
    "contact.propertyChange",
    "contact.deletion",
    "contact.privacyDeletion",
    "contact.restore",
    "contact.merge",
]


def contact_event(subscription_type: str, object_id: str | int, **fields: Any) -> dict[str, Any]:
    """One contact event as HubSpot sends it (`fields` add or override its fields)."""
    return {
        "eventId": next(_event_ids),
        "subscriptionId": 7,
        "portalId": PORTAL_ID,
        "appId": APP_ID,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": subscription_type,
        "attemptNumber": 0,
        "objectId": int(object_id),
        "changeSource": "CRM_UI",
        **fields,
    }


def merge_event(
    primary_id: str | int, merged_ids: Sequence[str | int], new_id: str | int | None = None
) -> dict[str, Any]:
    """A contact.merge: the merged contacts' ids, the primary's, and the id the result has
    (the primary's unless `new_id`)."""
    survivor = int(new_id if new_id is not None else primary_id)
    return contact_event(
        "contact.merge",
        survivor,
        primaryObjectId=int(primary_id),
        mergedObjectIds=[int(i) for i in merged_ids],
        newObjectId=survivor,
        numberOfPropertiesMoved=3,
    )


class ContactWebhook(BaseModel):
    """What `POST /_fake/webhooks/contacts` sends: one event to `url`, signed with `secret`."""

    url: str
    secret: str
    type: ContactEventType
    objectId: str
    mergedObjectIds: list[str] = Field(default_factory=list)  # contact.merge only
    propertyName: str | None = None  # contact.propertyChange only
    propertyValue: str | None = None


def event_of(request: ContactWebhook) -> dict[str, Any]:
    if request.type == "contact.merge":
        return merge_event(request.objectId, request.mergedObjectIds)
    extra: dict[str, Any] = {}
    if request.type == "contact.propertyChange":
        extra = {"propertyName": request.propertyName, "propertyValue": request.propertyValue}
    return contact_event(request.type, request.objectId, **extra)


Send = Callable[[str, str, list[dict[str, Any]]], Awaitable[tuple[int, Any]]]


def add_event_routes(app: FastAPI, send_signed_webhook: Send) -> None:
    """`POST /_fake/webhooks/contacts`: build, sign (v3, by `send_signed_webhook(url, secret,
    events)`) and send one contact event."""

    @app.post(f"{CONTROL_PREFIX}/webhooks/contacts")
    async def send_contact_event(request: ContactWebhook) -> dict[str, Any]:
        event = event_of(request)
        status, answer = await send_signed_webhook(request.url, request.secret, [event])
        return {"status": status, "event": event, "body": answer}
