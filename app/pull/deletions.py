"""What HubSpot's deletion, privacy-deletion and merge webhooks do to leads: a deleted contact's
lead is marked deleted (kept, not listed by default); a privacy deletion erases the lead and the
contact's values from every stored HubSpot event; a merge folds the leads of every merged
contact into the surviving contact's lead.

HubSpot's events: https://developers.hubspot.com/docs/api/webhooks (contact.deletion,
contact.privacyDeletion, contact.merge with primaryObjectId, mergedObjectIds, newObjectId)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.pull.merge import FIELDS
from app.pull.models import Lead, LeadCrmId
from app.webhooks.models import WebhookEvent

# The event fields that can carry a contact's values (a propertyChange's new value).
PERSONAL_EVENT_FIELDS = ("propertyValue",)
ERASED = "[erased]"


async def _leads_of(session: AsyncSession, source: str, crm_ids: Sequence[str]) -> list[Lead]:
    rows = await session.scalars(
        select(Lead)
        .join(LeadCrmId, LeadCrmId.lead_id == Lead.id)
        .where(LeadCrmId.crm_source == source, LeadCrmId.crm_id.in_(list(crm_ids)))
        .order_by(Lead.id)
    )
    return list(dict.fromkeys(rows))


async def mark_deleted(session: AsyncSession, source: str, crm_ids: Sequence[str]) -> int:
    """Mark the leads of deleted CRM contacts deleted; returns how many were live. Their CRM
    links stay, so a restored contact (contact.restore, or a later pull) brings the lead back."""
    now, marked = utcnow(), 0
    for lead in await _leads_of(session, source, crm_ids):
        if lead.deleted_at is None:
            lead.deleted_at, lead.updated_at = now, now
            marked += 1
    await session.flush()
    return marked


@dataclass
class Erased:
    leads: int = 0
    events: int = 0  # stored webhook events whose contact values were blanked


def _names(event: dict[str, Any], crm_id: str) -> bool:
    named = [event.get("objectId"), event.get("primaryObjectId"), event.get("newObjectId")]
    named += list(event.get("mergedObjectIds") or [])
    return crm_id in {str(n) for n in named if n is not None}


async def erase(session: AsyncSession, source: str, crm_ids: Sequence[str]) -> Erased:
    """A privacy deletion: the leads of these contacts are deleted outright (their CRM links
    cascade), and every stored event of `source` that names one of them keeps its ids and
    types but loses the values it carried."""
    out = Erased()
    leads = await _leads_of(session, source, crm_ids)
    if leads:
        ids = [lead.id for lead in leads]
        await session.execute(
            delete(Lead).where(Lead.id.in_(ids)).execution_options(synchronize_session=False)
        )
        out.leads = len(ids)
    for crm_id in dict.fromkeys(str(i) for i in crm_ids):
        rows = await session.scalars(
            select(WebhookEvent).where(
                WebhookEvent.source == source, WebhookEvent.body.contains(crm_id)
            )
        )
        for row in rows:
            event = json.loads(row.body)
            if not isinstance(event, dict) or not _names(event, crm_id):
                continue
            if any(event.get(f) not in (None, ERASED) for f in PERSONAL_EVENT_FIELDS):
                for name in PERSONAL_EVENT_FIELDS:
                    if name in event:
                        event[name] = ERASED
                row.body = json.dumps(event, separators=(",", ":"))
                out.events += 1
    await session.flush()
    return out


async def fold(
    session: AsyncSession, source: str, survivor_id: str, merged_ids: Sequence[str]
) -> Lead | None:
    """A merge in the CRM: every lead of `merged_ids` (and of `survivor_id`) becomes one, the
    lead of the surviving contact (or the oldest of them). The others give it their CRM links
    and any field it lacks, and are kept as deleted with `merged_into_id`. Returns the
    surviving lead (None when we have none of these contacts: the read that follows makes it)."""
    every = [survivor_id, *[i for i in merged_ids if i != survivor_id]]
    leads = await _leads_of(session, source, every)
    if not leads:
        return None
    links = {
        link.crm_id: link
        for link in await session.scalars(
            select(LeadCrmId).where(LeadCrmId.crm_source == source, LeadCrmId.crm_id.in_(every))
        )
    }
    own = links.get(survivor_id)
    survivor = next((lead for lead in leads if own and lead.id == own.lead_id), leads[0])
    now = utcnow()
    for lead in leads:
        if lead.id == survivor.id:
            continue
        for name in FIELDS:
            if getattr(survivor, name) is None and getattr(lead, name) is not None:
                setattr(survivor, name, getattr(lead, name))
        if survivor.record_id is None:
            survivor.record_id = lead.record_id
        await session.execute(
            update(LeadCrmId)
            .where(LeadCrmId.lead_id == lead.id)
            .values(lead_id=survivor.id, content_hash=None)
            .execution_options(synchronize_session=False)
        )
        lead.deleted_at, lead.merged_into_id, lead.updated_at = now, survivor.id, now
    if own is None:
        session.add(
            LeadCrmId(crm_source=source, crm_id=survivor_id, lead_id=survivor.id, content_hash=None)
        )
    survivor.deleted_at, survivor.merged_into_id, survivor.updated_at = None, None, now
    await session.flush()
    return survivor
