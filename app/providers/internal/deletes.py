"""Deleting from the internal CRM: a delete stamps the row's `deleted_at` (the read API hides it)
and logs a `deleted` activity; an erasure removes the person's rows for good (their contact, its
notes, interactions and activity), leaving one `deleted` activity that names nobody."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.models import Operation
from app.providers.base import Delivery
from app.providers.internal.common import Result, Written, activity
from app.providers.internal.models import (
    ContactType,
    CrmActivity,
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmMembership,
    CrmNote,
    CrmProperty,
)
from app.records import SPECS, Kind

# Each kind's table, by the column holding the website id.
WEBSITE_ID: dict[Kind, InstrumentedAttribute[Any]] = {
    Kind.owner: CrmContact.user_id,
    Kind.property: CrmProperty.property_id,
    Kind.enquiry: CrmEnquiry.enquiry_id,
    Kind.booking: CrmBooking.booking_id,
    Kind.membership: CrmMembership.user_id,
    Kind.note: CrmNote.note_id,
    Kind.activity: CrmActivity.activity_id,
}
ENTITY = {Kind.owner: "contact"}


async def delete_rows(
    session: AsyncSession, kind: Kind, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    """Soft-delete (or, for an erasure, remove) each record's row, in the caller's transaction.
    A row that is not there, or already deleted, counts as deleted and changes nothing."""
    column = WEBSITE_ID[kind]
    wanted = [d.record_id for d in deliveries]
    rows = {
        getattr(row, column.key): row
        for row in await session.scalars(select(column.class_).where(column.in_(wanted)))
    }
    results: list[Result] = []
    for d in deliveries:
        row = rows.get(d.record_id)
        if row is None:
            results.append(Written(d.crm_id or "", False, False, {"found": False}))
            continue
        contact_id = row.id if kind is Kind.owner else getattr(row, "contact_id", None)
        erase = d.operation is Operation.erase and kind is not Kind.property
        if erase:
            if kind is Kind.owner:
                await forget_contact(session, row.id)
            model = column.class_
            await session.execute(delete(model).where(model.id == row.id))
            contact_id = None
        elif row.deleted_at is None:
            row.deleted_at = now
        else:
            results.append(Written(row.id, False, False, {"alreadyDeleted": True}))
            continue
        label = SPECS[kind].label
        session.add(
            activity(
                now,
                contact_id=contact_id,
                entity_type=ENTITY.get(kind, kind.value),
                entity_id=d.record_id,
                activity_type="deleted",
                title=f"{label} {d.record_id} {'erased' if erase else 'deleted'}",
                meta={"operation": d.operation.value},
            )
        )
        results.append(Written(row.id, False, True, {"deleted": True, "erased": erase}))
    return results


async def forget_guest(session: AsyncSession, email: str | None) -> int:
    """Remove the guest contact with this email and what hangs on it (interactions by cascade,
    activity by hand); enquiries and bookings keep their rows, unlinked. Returns how many went."""
    if not email:
        return 0
    ids = list(
        await session.scalars(
            select(CrmContact.id).where(
                CrmContact.type == ContactType.guest.value, CrmContact.email == email.lower()
            )
        )
    )
    for contact_id in ids:
        await forget_contact(session, contact_id)
        await session.execute(delete(CrmContact).where(CrmContact.id == contact_id))
    return len(ids)


async def forget_contact(session: AsyncSession, contact_id: str) -> None:
    """The activity about a contact goes with it (its titles and details name the person); the
    rows that cascade (notes, interactions, memberships, property links) go with the contact."""
    await session.execute(delete(CrmActivity).where(CrmActivity.contact_id == contact_id))


async def restore_rows(session: AsyncSession, kind: Kind, website_ids: Sequence[str]) -> None:
    """A record sent again after its delete is back: its soft-deleted row is live again."""
    if not website_ids:
        return
    column = WEBSITE_ID[kind]
    model = column.class_
    await session.execute(
        update(model)
        .where(column.in_(list(website_ids)), model.deleted_at.is_not(None))
        .values(deleted_at=None)
        .execution_options(synchronize_session=False)
    )
