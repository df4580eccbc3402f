"""Memberships: one per owner, upserted by website user id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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
    money,
    owner_of,
    result,
    status_changed,
    text,
    when,
)
from app.providers.internal.models import CrmMembership, new_id

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
        "plan_tier": text(data, "planTier", 16),
        "billing_cycle": text(data, "billingCycle", 32),
        "plan_price": money(data, "price"),
        "status": text(data, "status", 16),
        "stripe_customer_id": text(data, "stripeCustomerId", 255),
        "stripe_subscription_id": text(data, "stripeSubscriptionId", 255),
        "start_date": when(data, "startDate"),
        "end_date": when(data, "endDate"),
        "renewal_date": when(data, "renewalDate"),
        "cancelled_date": when(data, "cancelledDate"),
        "last_payment_date": when(data, "lastPaymentDate"),
        "last_payment_amount": money(data, "lastPaymentAmount"),
        "next_payment_date": when(data, "nextPaymentDate"),
        "auto_renew": data.get("autoRenew"),
        "payment_failure_count": int(data.get("paymentFailureCount") or 0),
        "meta": extras(data, _MEMBERSHIP_FIELDS),
    }


async def write_memberships(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    existing: dict[str, CrmMembership] = await by_key(
        session, CrmMembership.user_id, (d.record_id for d in deliveries)
    )
    owners = await contacts_exist(session, (d.parent_crm_id for d in deliveries))
    results: list[Result] = []
    for d in deliveries:
        try:
            values = {**_membership_values(d.data), "contact_id": owner_of(d, owners)}
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
                activity(
                    now,
                    contact_id=row.contact_id,
                    entity_type="membership",
                    entity_id=row.id,
                    activity_type="created",
                    title=f"Membership {plan} ({row.status or 'no status'})",
                    meta={"planTier": row.plan_tier, "status": row.status},
                )
            )
            results.append(result(row, True, True))
            continue
        changes = apply(row, values)
        if changes:
            row.updated_at = now
        if "status" in changes:
            old, new = changes["status"]
            session.add(status_changed(now, row.contact_id, "membership", row.id, old, new))
        results.append(result(row, False, changes))
    return results
