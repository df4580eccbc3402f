"""Deleting at HubSpot: batch archive per object type, GDPR delete for contacts, and the request
shapes of both (our own models, from HubSpot's public documentation; the fake checks them too).

- Archive: `POST /crm/v3/objects/{objectType}/batch/archive` with `{"inputs": [{"id": ...}]}`,
  at most 100 ids, answered 204 with no body. Archived objects go to HubSpot's recycling bin
  (restorable for 90 days); HubSpot drops their associations, and notes stay with the other
  records they are associated to: we send nothing more for them.
  https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/batch/delete-contacts
- GDPR delete: `POST /crm/v3/objects/contacts/gdpr-delete` with `{"objectId": ...}` (a contact
  id) or `{"objectId": <email>, "idProperty": "email"}`, answered 204. It permanently deletes
  the contact and its associated content; an email HubSpot does not know is blocklisted.
  https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from app.models import Operation
from app.providers.base import Action, Delivery, FailureKind, Outcome, ProviderError
from app.providers.http import json_of, message_of
from app.providers.hubspot import mapping
from app.providers.hubspot.client import HubSpotClient
from app.records import Kind, without_guest
from app.settings import HubSpotSettings

ARCHIVE_MAX = 100  # ids per batch archive
GDPR_DELETE = "/crm/v3/objects/contacts/gdpr-delete"


class ObjectId(BaseModel):
    """One input of a batch archive (HubSpot's SimplePublicObjectId)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)


class BatchArchive(BaseModel):
    """The body of a batch archive."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[ObjectId] = Field(min_length=1, max_length=ARCHIVE_MAX)


class GdprDelete(BaseModel):
    """The body of a contact's GDPR delete: its id, or a unique property's value (email)."""

    model_config = ConfigDict(extra="forbid")

    objectId: str = Field(min_length=1)
    idProperty: str | None = Field(None, min_length=1)


class HubSpotProvider(Protocol):
    """What deleting needs of the adapter: its client and settings, and its upsert path."""

    client: HubSpotClient
    settings: HubSpotSettings
    listing_type: str

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]: ...


def archive_path(object_type: str) -> str:
    return f"/crm/v3/objects/{object_type}/batch/archive"


def _object_type(provider: HubSpotProvider, kind: Kind) -> str:
    if kind is Kind.owner:
        return "contacts"
    if kind is Kind.property:
        return provider.listing_type
    if kind is Kind.enquiry and provider.settings.enquiry_object == "lead":
        return "leads"
    if kind in (Kind.enquiry, Kind.booking):
        return "deals"
    return "notes"  # notes and activities


async def delete(
    provider: HubSpotProvider, kind: Kind, deliveries: Sequence[Delivery]
) -> list[Outcome]:
    """Deletes (or erases) a batch of one kind; one outcome per delivery, in order.

    delete: the objects are archived (a membership's properties on the owner's contact are
    cleared). erase: an owner's contact is GDPR-deleted; an enquiry's or booking's guest contact
    is GDPR-deleted by email and the deal (or lead) is written again without the guest's
    details; anything else is archived as for a delete."""
    outcomes: dict[int, Outcome] = {}
    archive: list[tuple[int, Delivery]] = []
    for n, d in enumerate(deliveries):
        try:
            if kind is Kind.membership:
                outcomes[n] = await _clear_membership(provider, d)
            elif d.operation is Operation.erase and kind is Kind.owner:
                outcomes[n] = await _gdpr_delete(provider, d, {"objectId": str(d.crm_id)})
            elif d.operation is Operation.erase and kind in (Kind.enquiry, Kind.booking):
                outcomes[n] = await _forget_guest(provider, kind, d)
            elif d.crm_id:
                archive.append((n, d))
            else:
                outcomes[n] = Outcome(action=Action.delete, response={"found": False})
        except ProviderError as exc:
            outcomes[n] = _failed(exc, d)
    if archive:
        outcomes |= await _archive(provider, _object_type(provider, kind), archive)
    return [outcomes[n] for n in range(len(deliveries))]


async def _archive(
    provider: HubSpotProvider, object_type: str, items: list[tuple[int, Delivery]]
) -> dict[int, Outcome]:
    path = archive_path(object_type)
    body = BatchArchive(inputs=[ObjectId(id=str(d.crm_id)) for _, d in items]).model_dump()
    try:
        response = await provider.client.request("POST", path, json=body)
        _refused(response, {"path": path, "input": body})
    except ProviderError as exc:
        return {n: _failed(exc, d, {"path": path, "input": {"id": d.crm_id}}) for n, d in items}
    return {
        n: Outcome(
            crm_id=d.crm_id,
            action=Action.delete,
            http_status=response.status_code,
            request={"path": path, "input": {"id": d.crm_id}},
            response={"archived": True},
        )
        for n, d in items
    }


async def _gdpr_delete(provider: HubSpotProvider, d: Delivery, body: dict[str, Any]) -> Outcome:
    """One contact permanently deleted; a contact HubSpot no longer has (404) counts as done."""
    sent = GdprDelete.model_validate(body).model_dump(exclude_none=True)
    request = {"path": GDPR_DELETE, "input": sent}
    response = await provider.client.request("POST", GDPR_DELETE, json=sent)
    if response.status_code != 404:
        _refused(response, request)
    return Outcome(
        crm_id=d.crm_id,
        action=Action.delete,
        http_status=response.status_code,
        request=request,
        response={"gdprDeleted": response.status_code != 404},
    )


async def _forget_guest(provider: HubSpotProvider, kind: Kind, d: Delivery) -> Outcome:
    """The guest's contact GDPR-deleted by email, then the record written without them."""
    email = d.data.get("guestEmail")
    gdpr = None
    if email:
        gdpr = await _gdpr_delete(provider, d, {"objectId": str(email), "idProperty": "email"})
    blanked = dataclasses.replace(d, data=without_guest(d.data), operation=Operation.upsert)
    [written] = await provider.deliver(kind, [blanked])
    request = {"gdprDelete": gdpr.request if gdpr else None, "update": written.request}
    if written.error is not None:
        raise ProviderError(
            written.error.kind,
            written.error.message,
            retry_after=written.error.retry_after,
            http_status=written.error.http_status,
            request=request,
            response=written.response,
        )
    return Outcome(
        crm_id=written.crm_id or d.crm_id,
        action=Action.delete,
        http_status=written.http_status,
        request=request,
        response={"guestGdprDeleted": gdpr is not None, "update": written.response},
    )


async def _clear_membership(provider: HubSpotProvider, d: Delivery) -> Outcome:
    """A membership is properties on the owner's contact: the ones it set are emptied (HubSpot
    clears a property set to an empty string)."""
    contact = d.parent_crm_id or d.crm_id
    cleared = dict.fromkeys(mapping.membership(d.data), "")
    if not contact or not cleared:
        return Outcome(crm_id=d.crm_id, action=Action.delete, response={"found": bool(contact)})
    path = "/crm/v3/objects/contacts/batch/update"
    body = {"inputs": [{"id": contact, "properties": cleared}]}
    request = {"path": path, "input": body["inputs"][0]}
    response = await provider.client.request("POST", path, json=body)
    if response.status_code != 404:
        _refused(response, request)
    return Outcome(
        crm_id=d.crm_id,
        action=Action.delete,
        http_status=response.status_code,
        request=request,
        response=json_of(response) if response.content else None,
    )


def _refused(response: httpx.Response, request: Any) -> None:
    """A 4xx the shared client passed back (validation, not found): the record's problem."""
    if response.status_code < 400:
        return
    payload = json_of(response)
    category = payload.get("category", "") if isinstance(payload, dict) else ""
    raise ProviderError(
        FailureKind.rejected,
        f"HubSpot {category or response.status_code}: {message_of(payload)}",
        http_status=response.status_code,
        request=request,
        response=payload,
    )


def _failed(exc: ProviderError, d: Delivery, request: Any = None) -> Outcome:
    error = ProviderError(
        exc.kind,
        exc.message,
        retry_after=exc.retry_after,
        http_status=exc.http_status,
        request=request or exc.request,  # this record's input, not the whole batch
        response=exc.response,
    )
    outcome = Outcome.failed(error, Action.delete)
    outcome.crm_id = d.crm_id
    return outcome
