"""Enquiries and bookings: records about a guest at a property, sharing the guest contact and the
property/owner links."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.providers.base import Delivery
from app.providers.internal.common import (
    Rejected,
    Result,
    activity,
    apply,
    by_key,
    day,
    extras,
    missing_parent,
    money,
    result,
    status_changed,
    text,
)
from app.providers.internal.contacts import GuestInfo, guest_contacts
from app.providers.internal.models import (
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmInteraction,
    CrmProperty,
    EnquiryStatus,
    enquiry_next_statuses,
    new_id,
)

_ENQUIRY_FIELDS = (
    "enquiryId",
    "propertyId",
    "guestName",
    "guestEmail",
    "guestPhone",
    "subject",
    "message",
    "status",
    "source",
    "checkIn",
    "checkOut",
    "guests",
)
_BOOKING_FIELDS = (
    "bookingId",
    "propertyId",
    "guestName",
    "guestEmail",
    "guestPhone",
    "checkIn",
    "checkOut",
    "guests",
    "totalPrice",
    "currency",
    "status",
    "paymentStatus",
)


@dataclass(slots=True)
class _Planned:
    delivery: Delivery
    values: dict[str, Any]
    prop: CrmProperty | None


async def _plan_guest_records(
    session: AsyncSession,
    deliveries: Sequence[Delivery],
    values_of: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[_Planned | Rejected]:
    """Values per enquiry or booking (or its rejection), with the property it belongs to."""
    props: dict[str, CrmProperty] = await by_key(
        session, CrmProperty.id, (d.parent_crm_id for d in deliveries)
    )
    plans: list[_Planned | Rejected] = []
    for d in deliveries:
        try:
            prop = props.get(d.parent_crm_id) if d.parent_crm_id else None
            if d.parent_crm_id and prop is None:
                raise missing_parent("property", d.parent_crm_id)
            plans.append(_Planned(d, values_of(d.data), prop))
        except Rejected as exc:
            plans.append(exc)
    return plans


def _linked_values(plan: _Planned, guests: dict[str, CrmContact]) -> dict[str, Any]:
    """A guest record's column values with its links: property, owner and guest contact."""
    values = dict(plan.values)
    prop, email = plan.prop, values["guest_email"]
    values["crm_property_id"] = prop.id if prop else None
    values["owner_contact_id"] = prop.owner_contact_id if prop else None
    if email and email in guests:
        values["guest_contact_id"] = guests[email].id
    return values


def _guests_to_touch(
    plans: Sequence[_Planned | Rejected], existing: dict[str, Any]
) -> dict[str, GuestInfo]:
    """The guests named by records that are new or name another guest than before: a record
    delivered again unchanged touches no contact."""
    wanted: dict[str, GuestInfo] = {}
    for plan in plans:
        if isinstance(plan, Rejected) or not (email := plan.values["guest_email"]):
            continue
        row = existing.get(plan.delivery.record_id)
        if row is None or row.guest_email != email or row.guest_contact_id is None:
            wanted.setdefault(
                email, GuestInfo(plan.values["guest_name"], plan.values["guest_phone"])
            )
    return wanted


def _enquiry_values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "guest_name": text(data, "guestName"),
        "guest_email": text(data, "guestEmail", 320),
        "guest_phone": text(data, "guestPhone", 32),
        "subject": text(data, "subject"),
        "message": text(data, "message"),
        "source": text(data, "source", 64),
        "check_in": day(data, "checkIn"),
        "check_out": day(data, "checkOut"),
        "guests": data.get("guests"),
        "meta": extras(data, _ENQUIRY_FIELDS),
    }


async def write_enquiries(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmEnquiry] = await by_key(
        session, CrmEnquiry.enquiry_id, (d.record_id for d in deliveries)
    )
    plans = await _plan_guest_records(session, deliveries, _enquiry_values)
    guests = await guest_contacts(session, _guests_to_touch(plans, existing), now)
    counts: Counter[str] = Counter()  # enquiries gained (or lost) per property
    results: list[Result] = []
    for plan in plans:
        if isinstance(plan, Rejected):
            results.append(plan)
            continue
        d, prop = plan.delivery, plan.prop
        values = _linked_values(plan, guests)
        wanted_status = str(d.data.get("status") or EnquiryStatus.new.value)
        row = existing.get(d.record_id)
        if row is None:
            row = CrmEnquiry(
                id=new_id(),
                enquiry_id=d.record_id,
                status=wanted_status,
                status_changed_at=now,
                created_at=now,
                updated_at=now,
                **values,
            )
            session.add(row)
            existing[d.record_id] = row
            if prop:
                counts[prop.id] += 1
            _log_new_enquiry(session, row, prop, now)
            results.append(result(row, True, True, guestContactId=row.guest_contact_id))
            continue
        # The website's copy may be older than an ops decision: a status only moves forward.
        if wanted_status in enquiry_next_statuses(row.status):
            values["status"] = wanted_status
        old_property = row.crm_property_id
        changes = apply(row, values)
        if changes:
            row.updated_at = now
        if "crm_property_id" in changes:
            if old_property:
                counts[old_property] -= 1
            if row.crm_property_id:
                counts[row.crm_property_id] += 1
        if "status" in changes:
            row.status_changed_at = now
            old, new = changes["status"]
            contact = row.owner_contact_id or row.guest_contact_id
            session.add(status_changed(now, contact, "enquiry", row.id, old, new))
        results.append(result(row, False, changes, guestContactId=row.guest_contact_id))
    await _count_enquiries(session, counts)
    return results


def _log_new_enquiry(
    session: AsyncSession, enquiry: CrmEnquiry, prop: CrmProperty | None, now: datetime
) -> None:
    """Seed 003: a new enquiry is an inbound message from the guest and an activity for the
    owner."""
    who = enquiry.guest_name or enquiry.guest_email or "a guest"
    where = (prop.title or prop.property_id) if prop else None
    contact = enquiry.guest_contact_id or enquiry.owner_contact_id
    if contact:
        session.add(
            CrmInteraction(
                id=new_id(),
                contact_id=contact,
                crm_property_id=enquiry.crm_property_id,
                crm_enquiry_id=enquiry.id,
                type="message",
                subject=enquiry.subject or (f"Enquiry about {where}" if where else "Enquiry"),
                content=enquiry.message,
                direction="inbound",
                initiated_by=enquiry.guest_email or "guest",
                created_at=now,
            )
        )
    session.add(
        activity(
            now,
            contact_id=enquiry.owner_contact_id or enquiry.guest_contact_id,
            entity_type="enquiry",
            entity_id=enquiry.id,
            activity_type="created",
            title=f"New enquiry from {who}" + (f" for {where}" if where else ""),
            details=enquiry.message,
            meta={
                "enquiryId": enquiry.enquiry_id,
                "propertyId": prop.property_id if prop else None,
                "guestContactId": enquiry.guest_contact_id,
                "source": enquiry.source,
            },
        )
    )


async def _count_enquiries(session: AsyncSession, counts: Counter[str]) -> None:
    """enquiry_count += n in SQL, so concurrent batches never lose an increment."""
    deltas = [{"pid": pid, "n": n} for pid, n in counts.items() if n]
    if not deltas:
        return
    await session.flush()  # the enquiries first; then the counters
    table: Table = CrmProperty.__table__  # type: ignore[assignment]
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("pid"))
        .values(enquiry_count=table.c.enquiry_count + bindparam("n")),
        deltas,
        execution_options={"synchronize_session": False},
    )
    # Property rows loaded in this session keep the old count in memory; nothing here reads
    # it, and the ORM never writes an attribute it did not see changed.


def _booking_values(data: dict[str, Any]) -> dict[str, Any]:
    currency = text(data, "currency", 3)
    return {
        "guest_name": text(data, "guestName"),
        "guest_email": text(data, "guestEmail", 320),
        "guest_phone": text(data, "guestPhone", 32),
        "check_in": day(data, "checkIn"),
        "check_out": day(data, "checkOut"),
        "guests": data.get("guests"),
        "total_price": money(data, "totalPrice"),
        "currency": currency.lower() if currency else None,
        "status": text(data, "status", 32),
        "payment_status": text(data, "paymentStatus", 32),
        "meta": extras(data, _BOOKING_FIELDS),
    }


async def write_bookings(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmBooking] = await by_key(
        session, CrmBooking.booking_id, (d.record_id for d in deliveries)
    )
    plans = await _plan_guest_records(session, deliveries, _booking_values)
    guests = await guest_contacts(session, _guests_to_touch(plans, existing), now)
    results: list[Result] = []
    for plan in plans:
        if isinstance(plan, Rejected):
            results.append(plan)
            continue
        d, prop = plan.delivery, plan.prop
        values = _linked_values(plan, guests)
        row = existing.get(d.record_id)
        if row is None:
            row = CrmBooking(
                id=new_id(), booking_id=d.record_id, created_at=now, updated_at=now, **values
            )
            session.add(row)
            existing[d.record_id] = row
            where = (prop.title or prop.property_id) if prop else None
            session.add(
                activity(
                    now,
                    contact_id=row.owner_contact_id or row.guest_contact_id,
                    entity_type="booking",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Booking {d.record_id}" + (f" for {where}" if where else ""),
                    meta={
                        "bookingId": d.record_id,
                        "checkIn": d.data.get("checkIn"),
                        "checkOut": d.data.get("checkOut"),
                        "totalPrice": row.total_price,
                        "currency": row.currency,
                    },
                )
            )
            results.append(result(row, True, True, guestContactId=row.guest_contact_id))
            continue
        changes = apply(row, values)
        if changes:
            row.updated_at = now
        if "status" in changes:
            old, new = changes["status"]
            contact = row.owner_contact_id or row.guest_contact_id
            session.add(status_changed(now, contact, "booking", row.id, old, new))
        results.append(result(row, False, changes, guestContactId=row.guest_contact_id))
    return results
