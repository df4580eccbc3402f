"""Properties upserted by website property id, and their owner links kept in step with approval."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.providers.base import Delivery
from app.providers.internal.common import (
    Rejected,
    Result,
    activity,
    apply,
    by_key,
    contacts_exist,
    extras,
    missing_parent,
    money,
    result,
    status_changed,
    text,
)
from app.providers.internal.models import (
    CrmProperty,
    CrmPropertyLink,
    PropertyLinkStatus,
    link_status_for,
    new_id,
)

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
        "title": text(data, "title") or text(data, "name"),
        "description": text(data, "description"),
        "location": text(data, "location"),
        "address": text(data, "address"),
        "city": text(data, "city"),
        "postcode": text(data, "postcode", 32),
        "country": text(data, "country"),
        "bedrooms": data.get("bedrooms"),
        "bathrooms": data.get("bathrooms"),
        "guests": data.get("maxGuests"),
        "price_per_night": money(data, "pricePerNight"),
        "listing_status": text(data, "status", 16),
        "rejection_reason": text(data, "rejectionReason"),
        "slug": text(data, "slug"),
        "main_image": text(data, "mainImage"),
        "plan": text(data, "plan", 64),
        "meta": extras(data, _PROPERTY_FIELDS),
    }


async def write_properties(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmProperty] = await by_key(
        session, CrmProperty.property_id, (d.record_id for d in deliveries)
    )
    owners = await contacts_exist(session, (d.parent_crm_id for d in deliveries))
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
                raise missing_parent("owner contact", owner_id)
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
                activity(
                    now,
                    contact_id=owner_id,
                    entity_type="property",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Property {row.title or d.record_id} added",
                )
            )
        else:
            changes = apply(row, values)
            if changes:
                row.updated_at = now
            if "listing_status" in changes:
                old, new = changes["listing_status"]
                session.add(status_changed(now, owner_id, "property", row.id, old, new))
        link_status = _link(session, row, owner_id, links[row.id], now)
        if link_status is not None and not created:
            changes["link"] = link_status
        details = {"linkStatus": link_status_for(row.listing_status).value} if owner_id else {}
        results.append(result(row, created, changes, **details))
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
