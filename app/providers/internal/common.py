"""What the internal CRM's writers share: the outcome types, reading snapshot values into
columns (rejecting what a column cannot hold), change tracking and the activity log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db import Base
from app.providers.base import Delivery
from app.providers.internal.models import CrmActivity, CrmContact, new_id
from app.records import MONEY_MAX, Kind

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


def when(data: dict[str, Any], key: str) -> datetime | None:
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


def day(data: dict[str, Any], key: str) -> date | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise Rejected(f"{key}: not a date ({raw!r})") from None


def money(data: dict[str, Any], key: str) -> float | None:
    raw = data.get(key)
    if raw is None:
        return None
    value = round(float(raw), 2)
    if not 0 <= value < MONEY_MAX:
        raise Rejected(f"{key}: {raw} is outside what this CRM stores (0 to {MONEY_MAX:,})")
    return value


def text(data: dict[str, Any], key: str, limit: int | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    as_text = str(value)
    if limit is not None and len(as_text) > limit:
        raise Rejected(f"{key}: longer than {limit} characters")
    return as_text


def extras(data: dict[str, Any], mapped: Iterable[str]) -> dict[str, Any] | None:
    """Fields that have no column of their own are kept as the row's metadata."""
    known = set(mapped)
    rest = {k: v for k, v in data.items() if k not in known}
    return rest or None


def apply(row: Base, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set what differs; return {column: (old, new)} for each change."""
    changes: dict[str, tuple[Any, Any]] = {}
    for key, new in values.items():
        old = getattr(row, key)
        if old != new:
            setattr(row, key, new)
            changes[key] = (old, new)
    return changes


def activity(
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


def status_changed(
    now: datetime, contact_id: str | None, entity: str, entity_id: str, old: Any, new: Any
) -> CrmActivity:
    return activity(
        now,
        contact_id=contact_id,
        entity_type=entity,
        entity_id=entity_id,
        activity_type="status_changed",
        title=f"{entity.capitalize()} status: {old or 'none'} → {new or 'none'}",
        meta={"from": old, "to": new},
    )


async def by_key(
    session: AsyncSession, column: InstrumentedAttribute[Any], keys: Iterable[Any]
) -> dict[Any, Any]:
    """Rows whose `column` is one of `keys`, by that value (one query)."""
    wanted = list({k for k in keys if k is not None})
    if not wanted:
        return {}
    entity = column.class_
    rows = await session.scalars(select(entity).where(column.in_(wanted)))
    return {getattr(row, column.key): row for row in rows}


def result(row: Any, created: bool, changes: dict[str, Any] | bool, **details: Any) -> Written:
    changed = bool(changes)
    if isinstance(changes, dict) and changes and not created:
        details["changedFields"] = sorted(changes)
    return Written(row.id, created, created or changed, details)


async def contacts_exist(session: AsyncSession, ids: Iterable[str | None]) -> set[str]:
    wanted = list({i for i in ids if i})
    if not wanted:
        return set()
    return set(await session.scalars(select(CrmContact.id).where(CrmContact.id.in_(wanted))))


def missing_parent(label: str, parent_id: str) -> Rejected:
    return Rejected(f"{label} {parent_id} is not in the internal CRM")


def owner_of(d: Delivery, owners: set[str]) -> str:
    if not d.parent_crm_id:
        raise Rejected(f"{d.kind.value} {d.record_id} names no owner synced to this CRM")
    if d.parent_crm_id not in owners:
        raise missing_parent("owner contact", d.parent_crm_id)
    return d.parent_crm_id
