"""Stripe events read for the CRM: who each is about, and what it means for that owner.

Pure functions over the event JSON (no database): `parse_event` checks a body is a Stripe event,
`refs` says which owner/customer/subscription it names, `effects` maps it (DESIGN.md, "Stripe")
to membership fields, an owner status, notes and activities. Written against Stripe's current
object shapes (invoice `parent.subscription_details`, period dates on subscription items) and
the older ones (`invoice.subscription`, top-level `current_period_end`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app import money

SOURCE = "stripe"

CHECKOUT_COMPLETED = "checkout.session.completed"
SUBSCRIPTION_CREATED = "customer.subscription.created"
SUBSCRIPTION_UPDATED = "customer.subscription.updated"
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
INVOICE_PAID = "invoice.paid"
INVOICE_PAYMENT_SUCCEEDED = "invoice.payment_succeeded"
INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
PAYMENT_SUCCEEDED = "payment_intent.succeeded"
PAYMENT_FAILED = "payment_intent.payment_failed"

HANDLED = frozenset(
    {
        CHECKOUT_COMPLETED,
        SUBSCRIPTION_CREATED,
        SUBSCRIPTION_UPDATED,
        SUBSCRIPTION_DELETED,
        INVOICE_PAID,
        INVOICE_PAYMENT_SUCCEEDED,
        INVOICE_PAYMENT_FAILED,
        PAYMENT_SUCCEEDED,
        PAYMENT_FAILED,
    }
)

# A Stripe subscription's status as a membership status (cancel_at_period_end: expiring_soon).
SUBSCRIPTION_STATUS = {
    "active": "active",
    "trialing": "active",
    "past_due": "past_due",
    "unpaid": "suspended",  # retries exhausted, invoices left open
    "paused": "suspended",
    "canceled": "cancelled",
    "incomplete": "inactive",  # first payment not made yet
    "incomplete_expired": "expired",
}
SETTLED_INVOICE = frozenset({"paid", "void"})  # an invoice in these owes nothing
PLAN_TIERS = ("bronze", "silver", "gold")
BILLING_CYCLES = {
    "annual": "annual",
    "annually": "annual",
    "yearly": "annual",
    "year": "annual",
    "monthly": "monthly",
    "month": "monthly",
}
FOLLOW_UP_AFTER = timedelta(days=1)  # a high-priority note's reminder, from the event's time


class EventError(ValueError):
    """The body is not a Stripe event we can read."""


def parse_event(body: bytes | str) -> dict[str, Any]:
    """The event as a dict, if the body is JSON shaped like a Stripe (snapshot) event."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise EventError("body: not JSON") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise EventError('body: not a Stripe event (expected "object": "event")')
    for name, kind in (("id", str), ("type", str), ("created", int)):
        value = event.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            raise EventError(f"body: {name} missing or not a {kind.__name__}")
    if len(event["id"]) > 255 or len(event["type"]) > 128:
        raise EventError("body: id or type too long")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise EventError("body: data.object missing")
    return event


@dataclass(frozen=True, slots=True)
class Refs:
    """Who an event is about, as far as the event itself says."""

    owner_id: str | None  # the website's userId, from metadata or client_reference_id
    customer_id: str | None  # Stripe customer
    subscription_id: str | None


@dataclass(slots=True)
class Effects:
    """What an event means for its owner. Membership fields and the owner status are state
    (applied only if no newer event set them); notes and activities are facts, each with an id
    derived from the event (or the invoice) so a repeat never adds another."""

    membership: dict[str, Any] = field(default_factory=dict)
    owner_status: str | None = None
    count_failure: bool = False  # paymentFailureCount + 1, once per event
    notes: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    ignore: str | None = None  # why this event has nothing for the CRM


def _obj(event: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = event["data"]["object"]
    return obj


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    """An id, whether Stripe sent it plain or expanded into its object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _when(value: Any) -> str | None:
    """A Stripe unix time as ISO 8601 UTC."""
    seconds = _int(value)
    if seconds is None or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _amount(minor: Any, currency: str | None) -> float | None:
    """A Stripe amount (minor units) in major units, by Stripe's currency rules (app.money)."""
    units = _int(minor)
    return None if units is None else money.amount(units, currency)


def _currency(obj: dict[str, Any]) -> str | None:
    """The object's ISO currency code, lower-case as Stripe sends it."""
    code = _text(obj.get("currency"))
    return code.lower() if code and len(code) == 3 else None


def _metadata_owner(metadata: dict[str, Any]) -> str | None:
    return _text(metadata.get("userId")) or _text(metadata.get("ownerId"))


def _subscription_details(obj: dict[str, Any]) -> dict[str, Any]:
    """An invoice's subscription part: `parent.subscription_details` (2025-03-31.basil and
    later) or the older top-level `subscription_details`."""
    parent = _dict(obj.get("parent"))
    return _dict(parent.get("subscription_details")) or _dict(obj.get("subscription_details"))


def refs(event: dict[str, Any]) -> Refs:
    obj = _obj(event)
    details = _subscription_details(obj)
    owner = (
        _metadata_owner(_dict(obj.get("metadata")))
        or _text(obj.get("client_reference_id"))
        or _metadata_owner(_dict(details.get("metadata")))
    )
    if obj.get("object") == "subscription":
        subscription = _id(obj.get("id"))
    else:
        subscription = _id(details.get("subscription")) or _id(obj.get("subscription"))
    return Refs(owner, _id(obj.get("customer")), subscription)


def effects(event: dict[str, Any], owner_id: str, current: dict[str, Any] | None = None) -> Effects:
    """The event's meaning for `owner_id` (already resolved). `current` is the event's object
    as Stripe has it now (stripe_fetch), if it was read: state (statuses, dates, amounts) is
    then taken from it; facts (notes, activities, a failed payment counted) always come from
    the event itself, so a repeat of the event records the same facts."""
    handler = _HANDLERS.get(event["type"])
    if handler is None:
        return Effects(ignore=f"event type {event['type']} is not handled")
    return handler(event, owner_id, refs(event), current or _obj(event))


# -- the mapping, one function per event family -----------------------------------------------


def _stripe_ids(ref: Refs) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    if ref.customer_id:
        ids["stripeCustomerId"] = ref.customer_id
    if ref.subscription_id:
        ids["stripeSubscriptionId"] = ref.subscription_id
    return ids


def _plan(metadata: dict[str, Any]) -> dict[str, Any]:
    """Plan tier and billing cycle as the website put them in the checkout's metadata. A
    subscription's price is not read for these: its interval and amount are Stripe's, not the
    website's plan names, and would disagree with them."""
    plan: dict[str, Any] = {}
    tier = (_text(metadata.get("planTier")) or "").lower()
    if tier in PLAN_TIERS:
        plan["planTier"] = tier
    cycle = (_text(metadata.get("billingCycle")) or "").lower()
    if cycle:
        plan["billingCycle"] = BILLING_CYCLES.get(cycle, cycle)
    return plan


def _note(event: dict[str, Any], owner_id: str, content: str) -> dict[str, Any]:
    created = datetime.fromtimestamp(event["created"], UTC)
    return {
        "noteId": f"note_{event['id']}",
        "ownerId": owner_id,
        "noteType": "issue",
        "priority": "high",
        "content": content,
        "reminderDate": (created + FOLLOW_UP_AFTER).isoformat().replace("+00:00", "Z"),
        "stripeEventId": event["id"],
    }


def _activity(
    event: dict[str, Any],
    owner_id: str,
    activity_id: str,
    activity_type: str,
    title: str,
    details: str,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    return {
        "activityId": activity_id,
        "ownerId": owner_id,
        "entityType": "contact",
        "activityType": activity_type,
        "title": title,
        "details": details,
        "metadata": {**metadata, "stripeEventId": event["id"]},
        "occurredAt": _when(event["created"]),
    }


def _checkout_completed(
    event: dict[str, Any], owner_id: str, ref: Refs, session: dict[str, Any]
) -> Effects:
    if session.get("mode") != "subscription":
        return Effects(ignore=f"checkout session in {session.get('mode')} mode: not a membership")
    currency = _currency(session)
    membership: dict[str, Any] = {
        "status": "active",
        **_stripe_ids(ref),
        **_plan(_dict(session.get("metadata"))),
        "startDate": _when(session.get("created")) or _when(event["created"]),
    }
    price = _amount(session.get("amount_total"), currency)
    if price is not None:
        membership.update(price=price, currency=currency)
    return Effects(membership=membership, owner_status="active")


def _period(subscription: dict[str, Any]) -> tuple[int | None, int | None]:
    """The current billing period: on the subscription's items since 2025-03-31.basil, on the
    subscription itself before. An end before its start is not a period (fixture data)."""
    start = _int(subscription.get("current_period_start"))
    end = _int(subscription.get("current_period_end"))
    if end is None:
        items = _dict(subscription.get("items")).get("data")
        first = _dict(items[0]) if isinstance(items, list) and items else {}
        start = _int(first.get("current_period_start"))
        end = _int(first.get("current_period_end"))
    if end is not None and start is not None and end <= start:
        return None, None
    return start, end


def _subscription_changed(
    event: dict[str, Any], owner_id: str, ref: Refs, sub: dict[str, Any]
) -> Effects:
    stripe_status = str(sub.get("status") or "")
    status = SUBSCRIPTION_STATUS.get(stripe_status)
    if status is None:
        return Effects(ignore=f"subscription status {stripe_status!r} is not known")
    cancel_at = _int(sub.get("cancel_at"))
    ending = bool(sub.get("cancel_at_period_end")) or cancel_at is not None
    _, period_end = _period(sub)
    if status == "active" and ending:
        status = "expiring_soon"
    ended = _when(sub.get("ended_at"))
    renews = status in ("active", "past_due") and not ending
    membership: dict[str, Any] = {
        "status": status,
        **_stripe_ids(ref),
        **_plan(_dict(sub.get("metadata"))),
        "autoRenew": not ending and status not in ("cancelled", "expired"),
        "endDate": ended or (_when(cancel_at or period_end) if ending else None),
        "cancelledDate": _when(sub.get("canceled_at")),
        "renewalDate": _when(period_end) if renews else None,
        "nextPaymentDate": _when(period_end) if renews else None,
    }
    started = _when(sub.get("start_date"))
    if started:
        membership["startDate"] = started
    return Effects(membership=membership)


def _subscription_deleted(
    event: dict[str, Any], owner_id: str, ref: Refs, sub: dict[str, Any]
) -> Effects:
    when = _when(sub.get("ended_at")) or _when(event["created"])
    cancelled = _when(sub.get("canceled_at")) or when
    tier = _plan(_dict(sub.get("metadata"))).get("planTier")
    membership = {
        "status": "cancelled",
        **_stripe_ids(ref),
        "autoRenew": False,
        "endDate": when,
        "cancelledDate": cancelled,
        "renewalDate": None,
        "nextPaymentDate": None,
    }
    reason = _text(_dict(sub.get("cancellation_details")).get("reason"))
    content = (
        f"Membership cancelled: Stripe subscription {ref.subscription_id} "
        f"({tier or 'plan'}) ended {(when or '')[:10]}"
        + (f" ({reason.replace('_', ' ')})" if reason else "")
        + ". Follow up with the owner about renewing."
    )
    return Effects(
        membership=membership, owner_status="inactive", notes=[_note(event, owner_id, content)]
    )


def _invoice_paid(
    event: dict[str, Any], owner_id: str, ref: Refs, invoice: dict[str, Any]
) -> Effects:
    if not ref.subscription_id:
        return Effects(ignore=f"invoice {invoice.get('id')} is not for a subscription")
    currency = _currency(invoice)
    paid = _amount(invoice.get("amount_paid"), currency)
    membership: dict[str, Any] = {"status": "active", **_stripe_ids(ref)}
    if paid:
        transitions = _dict(invoice.get("status_transitions"))
        membership["lastPaymentDate"] = _when(transitions.get("paid_at")) or _when(event["created"])
        membership.update(lastPaymentAmount=paid, currency=currency)
    found = Effects(membership=membership, owner_status="active")
    if invoice.get("billing_reason") == "subscription_cycle":
        invoice_id = _id(invoice.get("id")) or event["id"]
        # Keyed by the invoice: Stripe sends invoice.paid and invoice.payment_succeeded for the
        # same payment, and that is one renewal.
        found.activities.append(
            _activity(
                event,
                owner_id,
                f"activity_renewal_{invoice_id}",
                "subscription_renewed",
                "Membership renewed",
                f"Renewal payment of {money.format_money(paid, currency)} received "
                f"(subscription {ref.subscription_id}, invoice {invoice_id}).",
                {
                    "invoiceId": invoice_id,
                    "subscriptionId": ref.subscription_id,
                    "amount": paid,
                    "currency": currency,
                },
            )
        )
    return found


def _invoice_failed(
    event: dict[str, Any], owner_id: str, ref: Refs, now: dict[str, Any]
) -> Effects:
    invoice = _obj(event)  # the note tells what failed then, whatever happened since
    if not ref.subscription_id:
        return Effects(ignore=f"invoice {invoice.get('id')} is not for a subscription")
    currency = _currency(invoice)
    due = _amount(invoice.get("amount_due"), currency)
    attempt = _int(invoice.get("attempt_count"))
    what = "Renewal" if invoice.get("billing_reason") == "subscription_cycle" else "Membership"
    content = (
        f"{what} payment of {money.format_money(due, currency)} failed"
        + (f" (attempt {attempt})" if attempt else "")
        + f" for subscription {ref.subscription_id}, invoice {invoice.get('id')}. "
        "Owner suspended until it is paid: follow up."
    )
    return Effects(
        membership=_stripe_ids(ref),
        # Read from Stripe since and paid (or voided): nothing is owed, nobody is suspended.
        owner_status=None if now.get("status") in SETTLED_INVOICE else "suspended",
        count_failure=True,
        notes=[_note(event, owner_id, content)],
    )


def _payment_facts(intent: dict[str, Any]) -> tuple[float | None, str | None, dict[str, Any]]:
    currency = _currency(intent)
    received = _int(intent.get("amount_received"))
    amount = _amount(received if received else intent.get("amount"), currency)
    metadata = _dict(intent.get("metadata"))
    facts: dict[str, Any] = {
        "paymentIntentId": _id(intent.get("id")),
        "bookingId": _text(metadata.get("bookingId")),
        "amount": amount,
        "currency": currency,
        "paymentType": _text(metadata.get("paymentType")),
    }
    return amount, currency, {k: v for k, v in facts.items() if v is not None}


def _payment_succeeded(
    event: dict[str, Any], owner_id: str, ref: Refs, intent: dict[str, Any]
) -> Effects:
    amount, currency, facts = _payment_facts(intent)
    booking = facts.get("bookingId")
    kind = facts.get("paymentType")
    details = f"Payment of {money.format_money(amount, currency)} received" + (
        f" for booking {booking}" + (f" ({kind})" if kind else "") if booking else ""
    )
    activity = _activity(
        event,
        owner_id,
        f"activity_{event['id']}",
        "payment_success",
        "Payment received",
        details + ".",
        facts,
    )
    return Effects(owner_status="active", activities=[activity])


def _payment_failed(
    event: dict[str, Any], owner_id: str, ref: Refs, intent: dict[str, Any]
) -> Effects:
    amount, currency, facts = _payment_facts(intent)
    error = _dict(intent.get("last_payment_error"))
    message = (
        _text(error.get("message"))
        or _text(error.get("decline_code"))
        or _text(error.get("code"))
        or "payment failed"
    )
    facts["errorMessage"] = message
    booking = facts.get("bookingId")
    kind = facts.get("paymentType")
    what = f"Payment of {money.format_money(amount, currency)}" + (
        f" for booking {booking}" + (f" ({kind})" if kind else "") if booking else ""
    )
    activity = _activity(
        event,
        owner_id,
        f"activity_{event['id']}",
        "payment_failure",
        "Payment failed",
        f"{what} failed: {message}",
        facts,
    )
    note = _note(event, owner_id, f"{what} failed: {message} Owner suspended: follow up.")
    return Effects(owner_status="suspended", activities=[activity], notes=[note])


_HANDLERS = {
    CHECKOUT_COMPLETED: _checkout_completed,
    SUBSCRIPTION_CREATED: _subscription_changed,
    SUBSCRIPTION_UPDATED: _subscription_changed,
    SUBSCRIPTION_DELETED: _subscription_deleted,
    INVOICE_PAID: _invoice_paid,
    INVOICE_PAYMENT_SUCCEEDED: _invoice_paid,
    INVOICE_PAYMENT_FAILED: _invoice_failed,
    PAYMENT_SUCCEEDED: _payment_succeeded,
    PAYMENT_FAILED: _payment_failed,
}
assert set(_HANDLERS) == HANDLED
