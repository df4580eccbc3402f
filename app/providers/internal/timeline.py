"""An owner's timeline: notes, and activities (Stripe payments, renewals) in the activity log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.providers.base import Delivery
from app.providers.internal.common import (
    SYSTEM,
    Rejected,
    Result,
    apply,
    by_key,
    contacts_exist,
    extras,
    owner_of,
    result,
    text,
    when,
)
from app.providers.internal.models import (
    CrmActivity,
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmMembership,
    CrmNote,
    CrmProperty,
    new_id,
)

_NOTE_FIELDS = ("noteId", "ownerId", "noteType", "priority", "content", "reminderDate")


async def write_notes(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmNote] = await by_key(
        session, CrmNote.note_id, (d.record_id for d in deliveries)
    )
    owners = await contacts_exist(session, (d.parent_crm_id for d in deliveries))
    results: list[Result] = []
    for d in deliveries:
        data = d.data
        try:
            values = {
                "contact_id": owner_of(d, owners),
                "note_type": text(data, "noteType", 16) or "general",
                "priority": text(data, "priority", 16) or "medium",
                "content": text(data, "content") or "",
                "reminder_date": when(data, "reminderDate"),
                "created_by": text(data, "createdBy", 255) or SYSTEM,
            }
        except Rejected as exc:
            results.append(exc)
            continue
        row = existing.get(d.record_id)
        if row is None:
            row = CrmNote(
                id=new_id(), note_id=d.record_id, created_at=now, updated_at=now, **values
            )
            session.add(row)
            existing[d.record_id] = row
            results.append(result(row, True, True))
            continue
        changes = apply(row, values)
        if changes:
            row.updated_at = now
        results.append(result(row, False, changes))
    return results


_ACTIVITY_FIELDS = (
    "activityId",
    "ownerId",
    "entityType",
    "activityType",
    "title",
    "details",
    "metadata",
    "occurredAt",
    "performedBy",
)
# Where an activity about another entity finds it: the website id in its metadata.
_ENTITY_KEYS: dict[str, tuple[str, InstrumentedAttribute[Any]]] = {
    "property": ("propertyId", CrmProperty.property_id),
    "enquiry": ("enquiryId", CrmEnquiry.enquiry_id),
    "booking": ("bookingId", CrmBooking.booking_id),
}


async def _entity_id(
    session: AsyncSession, entity_type: str, contact_id: str, meta: dict[str, Any] | None
) -> str | None:
    """The CRM id of what an activity is about: the owner, their membership, or the property,
    enquiry or booking its metadata names (None when that is not here)."""
    if entity_type in ("contact", "owner"):
        return contact_id
    if entity_type == "membership":
        found = await session.scalar(
            select(CrmMembership.id).where(CrmMembership.contact_id == contact_id)
        )
        return found or None
    if entity_type in _ENTITY_KEYS and meta:
        key, column = _ENTITY_KEYS[entity_type]
        if meta.get(key) is not None:
            entity = column.class_
            found = await session.scalar(select(entity.id).where(column == str(meta[key])))
            return found or None
    return None


async def write_activities(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmActivity] = await by_key(
        session, CrmActivity.activity_id, (d.record_id for d in deliveries)
    )
    owners = await contacts_exist(session, (d.parent_crm_id for d in deliveries))
    contacts: dict[str, CrmContact] = await by_key(session, CrmContact.id, owners)
    results: list[Result] = []
    for d in deliveries:
        data = d.data
        try:
            contact_id = owner_of(d, owners)
            occurred = when(data, "occurredAt")
        except Rejected as exc:
            results.append(exc)
            continue
        meta = data.get("metadata")
        entity_type = text(data, "entityType", 32) or "contact"
        unmapped = extras(data, _ACTIVITY_FIELDS)
        values: dict[str, Any] = {
            "contact_id": contact_id,
            "entity_type": entity_type,
            "entity_id": await _entity_id(session, entity_type, contact_id, meta),
            "activity_type": text(data, "activityType") or "note",
            "title": text(data, "title"),
            "details": text(data, "details"),
            "meta": {**(meta or {}), **(unmapped or {})} or None,
            "performed_by": text(data, "performedBy", 255) or SYSTEM,
        }
        if occurred is not None:
            values["occurred_at"] = occurred
        row = existing.get(d.record_id)
        if row is None:
            row = CrmActivity(
                id=new_id(),
                activity_id=d.record_id,
                created_at=now,
                **{"occurred_at": now, **values},
            )
            session.add(row)
            existing[d.record_id] = row
            contact = contacts.get(contact_id)
            if contact is not None and (
                contact.last_activity_date is None or contact.last_activity_date < row.occurred_at
            ):
                contact.last_activity_date = row.occurred_at
            results.append(result(row, True, True))
            continue
        results.append(result(row, False, apply(row, values)))
    return results
