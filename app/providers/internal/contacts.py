"""Contacts: owners upserted by website user id, and guests found or made by email."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert
from app.providers.base import Delivery
from app.providers.internal.common import (
    Rejected,
    Result,
    activity,
    apply,
    by_key,
    extras,
    result,
    status_changed,
    text,
    when,
)
from app.providers.internal.models import ContactStatus, ContactType, CrmContact, new_id


@dataclass(slots=True)
class GuestInfo:
    name: str | None
    phone: str | None


async def guest_contacts(
    session: AsyncSession, wanted: dict[str, GuestInfo], now: datetime
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
            dialect_insert(session)(table)
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
                activity(
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
        if apply(row, fill):
            row.updated_at = now
        row.last_activity_date = now
    return found


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
        "email": text(data, "email", 320),
        "phone": text(data, "phone", 32),
        "company_name": text(data, "companyName"),
        "role": text(data, "role", 64),
        "address": text(data, "address"),
        "city": text(data, "city"),
        "state": text(data, "state"),
        "postcode": text(data, "postcode", 32),
        "country": text(data, "country"),
        "signup_date": when(data, "signupDate"),
        "meta": extras(data, _OWNER_FIELDS),
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
    existing: dict[str, CrmContact] = await by_key(
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
                activity(
                    now,
                    contact_id=row.id,
                    entity_type="contact",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Owner {row.name or d.record_id} added",
                )
            )
            results.append(result(row, True, True))
            continue
        if status is not None:
            values["status"] = status
        changes = apply(row, values)
        if changes:
            row.updated_at = row.last_activity_date = now
        if "status" in changes:
            old, new = changes["status"]
            session.add(status_changed(now, row.id, "contact", row.id, old, new))
        results.append(result(row, False, changes))
    return results
