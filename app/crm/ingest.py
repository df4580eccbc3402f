"""How records land in the CRM tables: idempotent upserts keyed by the website ids.

Each writer takes one batch of one kind inside the caller's transaction. It first works out
what every record needs (and rejects what it cannot take, before writing anything of it), then
writes. Existing rows, parents and guests are read with one query per batch; new rows go out in
the unit of work's batched INSERTs, and only columns that really changed are updated, stamped
and logged, so writing the same batch twice changes nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.crm.models import (
    MONEY_MAX,
    ContactStatus,
    ContactType,
    CrmActivity,
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmInteraction,
    CrmMembership,
    CrmNote,
    CrmProperty,
    CrmPropertyLink,
    EnquiryStatus,
    PropertyLinkStatus,
    enquiry_next_statuses,
    link_status_for,
    new_id,
)
from app.db import Base
from app.providers.base import Delivery
from app.records import Kind

SYSTEM = "crm-sync"  # who did it, when no person did

TABLES: dict[Kind, str] = {
    Kind.owner: "crm_contacts",
    Kind.property: "crm_properties",
    Kind.enquiry: "crm_enquiries",
    Kind.booking: "crm_bookings",
    Kind.membership: "crm_memberships",
    Kind.note: "crm_notes",
    Kind.activity: "crm_activity_log",
}


class Rejected(Exception):
    """A record this CRM cannot take as it is; nothing of it was written."""


@dataclass(slots=True)
class Written:
    crm_id: str
    created: bool
    changed: bool
    details: dict[str, Any] = field(default_factory=dict)


Result = Written | Rejected


# -- values -------------------------------------------------------------------------------

_WHEN: TypeAdapter[datetime | date] = TypeAdapter(datetime | date)


def _when(data: dict[str, Any], key: str) -> datetime | None:
    """A snapshot's date or date-time as aware UTC (a date is its midnight, a naive time UTC)."""
    raw = data.get(key)
    if raw is None:
        return None
    try:
        value = _WHEN.validate_python(raw)
    except ValidationError:
        raise Rejected(f"{key}: not a date or date-time ({raw!r})") from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(data: dict[str, Any], key: str) -> date | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise Rejected(f"{key}: not a date ({raw!r})") from None


def _money(data: dict[str, Any], key: str) -> float | None:
    raw = data.get(key)
    if raw is None:
        return None
    value = round(float(raw), 2)
    if not 0 <= value < MONEY_MAX:
        raise Rejected(f"{key}: {raw} is outside what this CRM stores (0 to {MONEY_MAX:,})")
    return value


def _text(data: dict[str, Any], key: str, limit: int | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    text = str(value)
    if limit is not None and len(text) > limit:
        raise Rejected(f"{key}: longer than {limit} characters")
    return text


def _extras(data: dict[str, Any], mapped: Iterable[str]) -> dict[str, Any] | None:
    """Fields that have no column of their own are kept as the row's metadata."""
    known = set(mapped)
    rest = {k: v for k, v in data.items() if k not in known}
    return rest or None


def _apply(row: Base, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set what differs; return {column: (old, new)} for each change."""
    changes: dict[str, tuple[Any, Any]] = {}
    for key, new in values.items():
        old = getattr(row, key)
        if old != new:
            setattr(row, key, new)
            changes[key] = (old, new)
    return changes


def _activity(
    now: datetime,
    *,
    contact_id: str | None,
    entity_type: str,
    entity_id: str | None,
    activity_type: str,
    title: str,
    meta: dict[str, Any] | None = None,
    details: str | None = None,
) -> CrmActivity:
    return CrmActivity(
        id=new_id(),
        contact_id=contact_id,
        entity_type=entity_type,
        entity_id=entity_id,
        activity_type=activity_type,
        title=title,
        details=details,
        meta=meta,
        performed_by=SYSTEM,
        occurred_at=now,
        created_at=now,
    )


def _status_changed(
    now: datetime, contact_id: str | None, entity: str, entity_id: str, old: Any, new: Any
) -> CrmActivity:
    return _activity(
        now,
        contact_id=contact_id,
        entity_type=entity,
        entity_id=entity_id,
        activity_type="status_changed",
        title=f"{entity.capitalize()} status: {old or 'none'} → {new or 'none'}",
        meta={"from": old, "to": new},
    )


async def _by_key(
    session: AsyncSession, column: InstrumentedAttribute[Any], keys: Iterable[Any]
) -> dict[Any, Any]:
    """Rows whose `column` is one of `keys`, by that value (one query)."""
    wanted = list({k for k in keys if k is not None})
    if not wanted:
        return {}
    entity = column.class_
    rows = await session.scalars(select(entity).where(column.in_(wanted)))
    return {getattr(row, column.key): row for row in rows}


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _result(row: Any, created: bool, changes: dict[str, Any] | bool, **details: Any) -> Written:
    changed = bool(changes)
    if isinstance(changes, dict) and changes and not created:
        details["changedFields"] = sorted(changes)
    return Written(row.id, created, created or changed, details)


# -- guests -------------------------------------------------------------------------------


@dataclass(slots=True)
class _GuestInfo:
    name: str | None
    phone: str | None


async def _guests(
    session: AsyncSession, wanted: dict[str, _GuestInfo], now: datetime
) -> dict[str, CrmContact]:
    """The guest contact for each email, made where missing. A unique index on guest emails
    and ON CONFLICT DO NOTHING make this safe when two workers meet the same new guest."""
    if not wanted:
        return {}
    by_email = CrmContact.email

    async def load(emails: Iterable[str]) -> dict[str, CrmContact]:
        rows = await session.scalars(
            select(CrmContact).where(CrmContact.type == ContactType.guest, by_email.in_(emails))
        )
        return {row.email: row for row in rows if row.email}

    found = await load(list(wanted))
    missing = [email for email in wanted if email not in found]
    created: set[str] = set()
    if missing:
        ours = {email: new_id() for email in missing}
        table: Table = CrmContact.__table__  # type: ignore[assignment]
        stmt = (
            _insert(session)(table)
            .values(
                [
                    {
                        "id": ours[email],
                        "type": ContactType.guest.value,
                        "status": ContactStatus.active.value,
                        "email": email,
                        "name": wanted[email].name,
                        "phone": wanted[email].phone,
                        "last_activity_date": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for email in missing
                ]
            )
            .on_conflict_do_nothing(
                index_elements=[table.c.email],
                index_where=table.c.type == ContactType.guest.value,
            )
        )
        await session.execute(stmt)
        fresh = await load(missing)
        found.update(fresh)
        created = {email for email, row in fresh.items() if row.id == ours[email]}
    for email, row in found.items():
        if email in created:
            session.add(
                _activity(
                    now,
                    contact_id=row.id,
                    entity_type="contact",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Guest {row.name or email} added",
                )
            )
            continue
        info = wanted[email]
        # A returning guest: fill in what we did not know, never overwrite.
        fill = {"name": row.name or info.name, "phone": row.phone or info.phone}
        if _apply(row, fill):
            row.updated_at = now
        row.last_activity_date = now
    return found


# -- owners -------------------------------------------------------------------------------

_OWNER_FIELDS = (
    "userId",
    "name",
    "firstName",
    "lastName",
    "email",
    "phone",
    "companyName",
    "role",
    "status",
    "address",
    "city",
    "state",
    "postcode",
    "country",
    "signupDate",
)
_CONTACT_STATUSES = {s.value for s in ContactStatus}


def _owner_values(data: dict[str, Any]) -> dict[str, Any]:
    name = data.get("name") or " ".join(
        str(part) for part in (data.get("firstName"), data.get("lastName")) if part
    )
    return {
        "name": name or None,
        "email": _text(data, "email", 320),
        "phone": _text(data, "phone", 32),
        "company_name": _text(data, "companyName"),
        "role": _text(data, "role", 64),
        "address": _text(data, "address"),
        "city": _text(data, "city"),
        "state": _text(data, "state"),
        "postcode": _text(data, "postcode", 32),
        "country": _text(data, "country"),
        "signup_date": _when(data, "signupDate"),
        "meta": _extras(data, _OWNER_FIELDS),
    }


def _owner_status(data: dict[str, Any]) -> str | None:
    """`status` (the Stripe work's active/inactive/suspended/pending) wins; the website's
    membershipStatus stands in when it is one of those."""
    for key in ("status", "membershipStatus"):
        value = data.get(key)
        if value in _CONTACT_STATUSES:
            return str(value)
    return None


async def write_owners(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmContact] = await _by_key(
        session, CrmContact.user_id, (d.record_id for d in deliveries)
    )
    results: list[Result] = []
    for d in deliveries:
        try:
            values = _owner_values(d.data)
        except Rejected as exc:
            results.append(exc)
            continue
        status = _owner_status(d.data)
        row = existing.get(d.record_id)
        if row is None:
            row = CrmContact(
                id=new_id(),
                user_id=d.record_id,
                type=ContactType.owner.value,
                status=status or ContactStatus.pending.value,
                last_activity_date=now,
                created_at=now,
                updated_at=now,
                **values,
            )
            session.add(row)
            existing[d.record_id] = row
            session.add(
                _activity(
                    now,
                    contact_id=row.id,
                    entity_type="contact",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Owner {row.name or d.record_id} added",
                )
            )
            results.append(_result(row, True, True))
            continue
        if status is not None:
            values["status"] = status
        changes = _apply(row, values)
        if changes:
            row.updated_at = row.last_activity_date = now
        if "status" in changes:
            old, new = changes["status"]
            session.add(_status_changed(now, row.id, "contact", row.id, old, new))
        results.append(_result(row, False, changes))
    return results


# -- properties ---------------------------------------------------------------------------

_PROPERTY_FIELDS = (
    "propertyId",
    "ownerId",
    "title",
    "name",
    "description",
    "location",
    "address",
    "city",
    "postcode",
    "country",
    "bedrooms",
    "bathrooms",
    "maxGuests",
    "pricePerNight",
    "status",
    "rejectionReason",
    "slug",
    "plan",
    "mainImage",
)


def _property_values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": _text(data, "title") or _text(data, "name"),
        "description": _text(data, "description"),
        "location": _text(data, "location"),
        "address": _text(data, "address"),
        "city": _text(data, "city"),
        "postcode": _text(data, "postcode", 32),
        "country": _text(data, "country"),
        "bedrooms": data.get("bedrooms"),
        "bathrooms": data.get("bathrooms"),
        "guests": data.get("maxGuests"),
        "price_per_night": _money(data, "pricePerNight"),
        "listing_status": _text(data, "status", 16),
        "rejection_reason": _text(data, "rejectionReason"),
        "slug": _text(data, "slug"),
        "main_image": _text(data, "mainImage"),
        "plan": _text(data, "plan", 64),
        "meta": _extras(data, _PROPERTY_FIELDS),
    }


async def _contacts_exist(session: AsyncSession, ids: Iterable[str | None]) -> set[str]:
    wanted = list({i for i in ids if i})
    if not wanted:
        return set()
    return set(await session.scalars(select(CrmContact.id).where(CrmContact.id.in_(wanted))))


def _missing_parent(label: str, parent_id: str) -> Rejected:
    return Rejected(f"{label} {parent_id} is not in the internal CRM")


async def write_properties(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmProperty] = await _by_key(
        session, CrmProperty.property_id, (d.record_id for d in deliveries)
    )
    owners = await _contacts_exist(session, (d.parent_crm_id for d in deliveries))
    links: dict[str, list[CrmPropertyLink]] = defaultdict(list)
    if existing:
        for link in await session.scalars(
            select(CrmPropertyLink).where(
                CrmPropertyLink.crm_property_id.in_([p.id for p in existing.values()])
            )
        ):
            links[link.crm_property_id].append(link)

    results: list[Result] = []
    for d in deliveries:
        owner_id = d.parent_crm_id
        try:
            if owner_id and owner_id not in owners:
                raise _missing_parent("owner contact", owner_id)
            values = {**_property_values(d.data), "owner_contact_id": owner_id}
        except Rejected as exc:
            results.append(exc)
            continue
        row = existing.get(d.record_id)
        created = row is None
        changes: dict[str, Any] = {}
        if row is None:
            row = CrmProperty(
                id=new_id(),
                property_id=d.record_id,
                enquiry_count=0,
                created_at=now,
                updated_at=now,
                **values,
            )
            session.add(row)
            existing[d.record_id] = row
            session.add(
                _activity(
                    now,
                    contact_id=owner_id,
                    entity_type="property",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Property {row.title or d.record_id} added",
                )
            )
        else:
            changes = _apply(row, values)
            if changes:
                row.updated_at = now
            if "listing_status" in changes:
                old, new = changes["listing_status"]
                session.add(_status_changed(now, owner_id, "property", row.id, old, new))
        link_status = _link(session, row, owner_id, links[row.id], now)
        if link_status is not None and not created:
            changes["link"] = link_status
        details = {"linkStatus": link_status_for(row.listing_status).value} if owner_id else {}
        results.append(_result(row, created, changes, **details))
    return results


def _link(
    session: AsyncSession,
    prop: CrmProperty,
    owner_id: str | None,
    links: list[CrmPropertyLink],
    now: datetime,
) -> str | None:
    """Keep the property's owner link in step with its approval; a former owner's link goes
    inactive. Returns the new link status when anything changed."""
    wanted = link_status_for(prop.listing_status)
    changed: str | None = None
    for link in links:
        if link.owner_contact_id != owner_id and link.link_status != PropertyLinkStatus.inactive:
            link.link_status = PropertyLinkStatus.inactive.value
            link.updated_at = now
            changed = PropertyLinkStatus.inactive.value
    if owner_id is None:
        return changed
    current = next((link for link in links if link.owner_contact_id == owner_id), None)
    if current is None:
        current = CrmPropertyLink(
            id=new_id(),
            owner_contact_id=owner_id,
            crm_property_id=prop.id,
            link_status=wanted.value,
            linked_at=now,
            updated_at=now,
        )
        session.add(current)
        links.append(current)
        return wanted.value
    if current.link_status != wanted:
        current.link_status = wanted.value
        current.updated_at = now
        return wanted.value
    return changed


# -- enquiries and bookings ---------------------------------------------------------------

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
    props: dict[str, CrmProperty] = await _by_key(
        session, CrmProperty.id, (d.parent_crm_id for d in deliveries)
    )
    plans: list[_Planned | Rejected] = []
    for d in deliveries:
        try:
            prop = props.get(d.parent_crm_id) if d.parent_crm_id else None
            if d.parent_crm_id and prop is None:
                raise _missing_parent("property", d.parent_crm_id)
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
) -> dict[str, _GuestInfo]:
    """The guests named by records that are new or name another guest than before: a record
    delivered again unchanged touches no contact."""
    wanted: dict[str, _GuestInfo] = {}
    for plan in plans:
        if isinstance(plan, Rejected) or not (email := plan.values["guest_email"]):
            continue
        row = existing.get(plan.delivery.record_id)
        if row is None or row.guest_email != email or row.guest_contact_id is None:
            wanted.setdefault(
                email, _GuestInfo(plan.values["guest_name"], plan.values["guest_phone"])
            )
    return wanted


def _enquiry_values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "guest_name": _text(data, "guestName"),
        "guest_email": _text(data, "guestEmail", 320),
        "guest_phone": _text(data, "guestPhone", 32),
        "subject": _text(data, "subject"),
        "message": _text(data, "message"),
        "source": _text(data, "source", 64),
        "check_in": _day(data, "checkIn"),
        "check_out": _day(data, "checkOut"),
        "guests": data.get("guests"),
        "meta": _extras(data, _ENQUIRY_FIELDS),
    }


async def write_enquiries(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmEnquiry] = await _by_key(
        session, CrmEnquiry.enquiry_id, (d.record_id for d in deliveries)
    )
    plans = await _plan_guest_records(session, deliveries, _enquiry_values)
    guests = await _guests(session, _guests_to_touch(plans, existing), now)
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
            results.append(_result(row, True, True, guestContactId=row.guest_contact_id))
            continue
        # The website's copy may be older than an ops decision: a status only moves forward.
        if wanted_status in enquiry_next_statuses(row.status):
            values["status"] = wanted_status
        old_property = row.crm_property_id
        changes = _apply(row, values)
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
            session.add(_status_changed(now, contact, "enquiry", row.id, old, new))
        results.append(_result(row, False, changes, guestContactId=row.guest_contact_id))
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
        _activity(
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
    currency = _text(data, "currency", 3)
    return {
        "guest_name": _text(data, "guestName"),
        "guest_email": _text(data, "guestEmail", 320),
        "guest_phone": _text(data, "guestPhone", 32),
        "check_in": _day(data, "checkIn"),
        "check_out": _day(data, "checkOut"),
        "guests": data.get("guests"),
        "total_price": _money(data, "totalPrice"),
        "currency": currency.lower() if currency else None,
        "status": _text(data, "status", 32),
        "payment_status": _text(data, "paymentStatus", 32),
        "meta": _extras(data, _BOOKING_FIELDS),
    }


async def write_bookings(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmBooking] = await _by_key(
        session, CrmBooking.booking_id, (d.record_id for d in deliveries)
    )
    plans = await _plan_guest_records(session, deliveries, _booking_values)
    guests = await _guests(session, _guests_to_touch(plans, existing), now)
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
                _activity(
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
            results.append(_result(row, True, True, guestContactId=row.guest_contact_id))
            continue
        changes = _apply(row, values)
        if changes:
            row.updated_at = now
        if "status" in changes:
            old, new = changes["status"]
            contact = row.owner_contact_id or row.guest_contact_id
            session.add(_status_changed(now, contact, "booking", row.id, old, new))
        results.append(_result(row, False, changes, guestContactId=row.guest_contact_id))
    return results


# -- memberships, notes, activities: all about an owner ------------------------------------

_MEMBERSHIP_FIELDS = (
    "userId",
    "planTier",
    "billingCycle",
    "price",
    "status",
    "stripeCustomerId",
    "stripeSubscriptionId",
    "startDate",
    "endDate",
    "renewalDate",
    "cancelledDate",
    "lastPaymentDate",
    "lastPaymentAmount",
    "nextPaymentDate",
    "autoRenew",
    "paymentFailureCount",
)


def _membership_values(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan_tier": _text(data, "planTier", 16),
        "billing_cycle": _text(data, "billingCycle", 32),
        "plan_price": _money(data, "price"),
        "status": _text(data, "status", 16),
        "stripe_customer_id": _text(data, "stripeCustomerId", 255),
        "stripe_subscription_id": _text(data, "stripeSubscriptionId", 255),
        "start_date": _when(data, "startDate"),
        "end_date": _when(data, "endDate"),
        "renewal_date": _when(data, "renewalDate"),
        "cancelled_date": _when(data, "cancelledDate"),
        "last_payment_date": _when(data, "lastPaymentDate"),
        "last_payment_amount": _money(data, "lastPaymentAmount"),
        "next_payment_date": _when(data, "nextPaymentDate"),
        "auto_renew": data.get("autoRenew"),
        "payment_failure_count": int(data.get("paymentFailureCount") or 0),
        "meta": _extras(data, _MEMBERSHIP_FIELDS),
    }


def _owner_of(d: Delivery, owners: set[str]) -> str:
    if not d.parent_crm_id:
        raise Rejected(f"{d.kind.value} {d.record_id} names no owner synced to this CRM")
    if d.parent_crm_id not in owners:
        raise _missing_parent("owner contact", d.parent_crm_id)
    return d.parent_crm_id


async def write_memberships(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmMembership] = await _by_key(
        session, CrmMembership.user_id, (d.record_id for d in deliveries)
    )
    owners = await _contacts_exist(session, (d.parent_crm_id for d in deliveries))
    results: list[Result] = []
    for d in deliveries:
        try:
            values = {**_membership_values(d.data), "contact_id": _owner_of(d, owners)}
        except Rejected as exc:
            results.append(exc)
            continue
        row = existing.get(d.record_id)
        if row is None:
            row = CrmMembership(
                id=new_id(), user_id=d.record_id, created_at=now, updated_at=now, **values
            )
            session.add(row)
            existing[d.record_id] = row
            plan = " ".join(p for p in (row.plan_tier, row.billing_cycle) if p) or "membership"
            session.add(
                _activity(
                    now,
                    contact_id=row.contact_id,
                    entity_type="membership",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Membership {plan} ({row.status or 'no status'})",
                    meta={"planTier": row.plan_tier, "status": row.status},
                )
            )
            results.append(_result(row, True, True))
            continue
        changes = _apply(row, values)
        if changes:
            row.updated_at = now
        if "status" in changes:
            old, new = changes["status"]
            session.add(_status_changed(now, row.contact_id, "membership", row.id, old, new))
        results.append(_result(row, False, changes))
    return results


_NOTE_FIELDS = ("noteId", "ownerId", "noteType", "priority", "content", "reminderDate")


async def write_notes(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmNote] = await _by_key(
        session, CrmNote.note_id, (d.record_id for d in deliveries)
    )
    owners = await _contacts_exist(session, (d.parent_crm_id for d in deliveries))
    results: list[Result] = []
    for d in deliveries:
        data = d.data
        try:
            values = {
                "contact_id": _owner_of(d, owners),
                "note_type": _text(data, "noteType", 16) or "general",
                "priority": _text(data, "priority", 16) or "medium",
                "content": _text(data, "content") or "",
                "reminder_date": _when(data, "reminderDate"),
                "created_by": _text(data, "createdBy", 255) or SYSTEM,
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
            results.append(_result(row, True, True))
            continue
        changes = _apply(row, values)
        if changes:
            row.updated_at = now
        results.append(_result(row, False, changes))
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
    existing: dict[str, CrmActivity] = await _by_key(
        session, CrmActivity.activity_id, (d.record_id for d in deliveries)
    )
    owners = await _contacts_exist(session, (d.parent_crm_id for d in deliveries))
    contacts: dict[str, CrmContact] = await _by_key(session, CrmContact.id, owners)
    results: list[Result] = []
    for d in deliveries:
        data = d.data
        try:
            contact_id = _owner_of(d, owners)
            occurred = _when(data, "occurredAt")
        except Rejected as exc:
            results.append(exc)
            continue
        meta = data.get("metadata")
        entity_type = _text(data, "entityType", 32) or "contact"
        extras = _extras(data, _ACTIVITY_FIELDS)
        values: dict[str, Any] = {
            "contact_id": contact_id,
            "entity_type": entity_type,
            "entity_id": await _entity_id(session, entity_type, contact_id, meta),
            "activity_type": _text(data, "activityType") or "note",
            "title": _text(data, "title"),
            "details": _text(data, "details"),
            "meta": {**(meta or {}), **(extras or {})} or None,
            "performed_by": _text(data, "performedBy", 255) or SYSTEM,
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
            results.append(_result(row, True, True))
            continue
        results.append(_result(row, False, _apply(row, values)))
    return results


Writer = Callable[[AsyncSession, Sequence[Delivery], datetime], Awaitable[list[Result]]]

WRITERS: dict[Kind, Writer] = {
    Kind.owner: write_owners,
    Kind.property: write_properties,
    Kind.enquiry: write_enquiries,
    Kind.booking: write_bookings,
    Kind.membership: write_memberships,
    Kind.note: write_notes,
    Kind.activity: write_activities,
}


async def write(
    session: AsyncSession, kind: Kind, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    """One batch of one kind, in the caller's transaction; one result per delivery, in order."""
    results = await WRITERS[kind](session, deliveries, now)
    await session.flush()
    return results
