"""Which of two Stripe events is the newer, decided by what the events say, never by when they
arrived: Stripe promises neither order nor single delivery (https://docs.stripe.com/webhooks
#event-ordering).

Every field an event sets (a membership's status, an owner's status, ...) remembers the Mark of
the event that set it; another event replaces the value only if its Mark `replaces` that one.
The rules, in the order they are asked (the README has them as a table):

1. The same event again: its values again (a repeat delivery or a replay changes nothing).
2. The same Stripe object, at different stages of its life: the later stage, whatever the times.
   Statuses that cannot go back: a subscription is `incomplete` first and `canceled` or
   `incomplete_expired` last; an invoice is `open` before it is `paid`, `void` or
   `uncollectible`; a payment intent succeeds or is cancelled once.
3. The same subscription, ended by one event and not by the other: the one that ended it. A
   cancelled subscription stays cancelled; no late event of it (a final invoice, an update sent
   at the same second) brings its membership back. A new subscription can.
4. Different `created` (Stripe's clock, in seconds): the later.
5. The same second, the same object: the event whose `previous_attributes` are the other's
   values came after it; else the object's own later timestamp (a subscription's period start,
   cancellation or end; an invoice's status transitions).
6. Still tied: a fixed order of event types (the order Stripe sends them in for one change:
   checkout, subscription created, invoice failed, invoice paid, subscription updated, payment
   intents, subscription deleted), then the event id. Arbitrary, but the same whatever the
   order of arrival.

Rules 2, 3 and 5 compare events about one object or one subscription, so the order they give is
the one Stripe's own objects went through; rules 4 and 6 are a total order. Three or more events
of one second about one object whose `previous_attributes` contradict each other could still be
ordered differently by arrival; Stripe's own events never do that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Scalar = str | int | float | bool | None

# Each object's stages: a status is never followed by one of a lower stage.
# (https://docs.stripe.com/billing/subscriptions/overview#subscription-statuses,
# https://docs.stripe.com/invoicing/overview#invoice-statuses,
# https://docs.stripe.com/payments/paymentintents/lifecycle)
STAGES: dict[str, dict[str, int]] = {
    "subscription": {
        "incomplete": 0,
        "trialing": 1,
        "active": 1,
        "past_due": 1,
        "unpaid": 1,
        "paused": 1,
        "canceled": 2,
        "incomplete_expired": 2,
    },
    "invoice": {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3},
    "payment_intent": {
        "requires_payment_method": 0,
        "requires_confirmation": 0,
        "requires_action": 0,
        "processing": 1,
        "requires_capture": 1,
        "succeeded": 2,
        "canceled": 2,
    },
    "checkout.session": {"open": 0, "complete": 1, "expired": 1},
}
ENDED = frozenset({"canceled", "incomplete_expired"})  # a subscription's last statuses
SUBSCRIPTION_DELETED = "customer.subscription.deleted"
# Rule 6: for one change Stripe sends these in this order.
TYPE_ORDER = {
    "checkout.session.completed": 0,
    "customer.subscription.created": 1,
    "invoice.payment_failed": 2,
    "invoice.paid": 3,
    "invoice.payment_succeeded": 3,
    "customer.subscription.updated": 4,
    "payment_intent.payment_failed": 5,
    "payment_intent.succeeded": 5,
    SUBSCRIPTION_DELETED: 6,
}
OTHER_TYPES = 5
# The object attributes rule 5 compares: those a subscription's or invoice's life changes.
# Only these are kept (an object's other attributes can be personal: names, emails).
LIFE_ATTRIBUTES = frozenset(
    {
        "status",
        "cancel_at_period_end",
        "cancel_at",
        "canceled_at",
        "ended_at",
        "trial_start",
        "trial_end",
        "current_period_start",
        "current_period_end",
        "latest_invoice",
        "collection_method",
        "paid",
        "attempt_count",
        "attempted",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "next_payment_attempt",
    }
)


@dataclass(frozen=True, slots=True)
class Mark:
    """What an event says about where its object stood: enough to order it against another."""

    created: int  # the event's `created`, unix seconds
    event_id: str
    type: str = ""
    object_id: str | None = None
    subscription_id: str | None = None  # the subscription it is about, if any
    stage: int = 0  # its object's stage (STAGES)
    ends_subscription: bool = False
    moment: int | None = None  # the object's own latest timestamp, unix seconds
    # The object's life attributes, and those in the event's previous_attributes: rule 5.
    state: dict[str, Scalar] = field(default_factory=dict)
    previous: dict[str, Scalar] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> Mark:
        """A stored mark; the `[created, event_id]` pairs stored before these rules existed
        read as marks that know only their time."""
        if isinstance(value, list):
            return cls(created=int(value[0]), event_id=str(value[1]))
        known = {k: v for k, v in dict(value).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _plain(values: Any) -> dict[str, Scalar]:
    """The life attributes among `values` that are plain values."""
    if not isinstance(values, dict):
        return {}
    return {
        k: v
        for k, v in values.items()
        if k in LIFE_ATTRIBUTES and (v is None or isinstance(v, str | int | float | bool))
    }


def _moment(obj: dict[str, Any]) -> int | None:
    """The latest of the object's own timestamps that mark a step of its life."""
    times = [_int(obj.get(k)) for k in ("canceled_at", "ended_at", "current_period_start")]
    items = obj.get("items")
    if isinstance(items, dict) and isinstance(items.get("data"), list) and items["data"]:
        first = items["data"][0]
        times.append(_int(first.get("current_period_start")) if isinstance(first, dict) else None)
    transitions = obj.get("status_transitions")
    if isinstance(transitions, dict):
        times += [_int(v) for v in transitions.values()]
    found = [t for t in times if t is not None and t > 0]
    return max(found) if found else None


def mark_of(
    event: dict[str, Any], subscription_id: str | None, current: dict[str, Any] | None = None
) -> Mark:
    """The event's Mark. `current` is its object as fetched from Stripe now, if it was: its
    status gives the stage (the state now is at least as late as the event's); what the event
    said (its time, its payload, its previous_attributes) still places the event itself."""
    obj: dict[str, Any] = event["data"]["object"]
    kind = str(obj.get("object") or "")
    status = str((current or obj).get("status") or "")
    deleted = event["type"] == SUBSCRIPTION_DELETED
    ends = kind == "subscription" and (deleted or status in ENDED)
    stage = 2 if deleted else STAGES.get(kind, {}).get(status, 0)
    object_id = obj.get("id")
    return Mark(
        created=int(event["created"]),
        event_id=str(event["id"]),
        type=str(event["type"]),
        object_id=object_id if isinstance(object_id, str) and object_id else None,
        subscription_id=subscription_id,
        stage=stage,
        ends_subscription=ends,
        moment=_moment(current or obj),
        state=_plain(obj),
        previous=_plain(event["data"].get("previous_attributes")),
    )


def _follows(later: Mark, earlier: Mark) -> bool:
    """`later`'s previous_attributes are `earlier`'s values: it changed what `earlier` showed."""
    if not later.previous:
        return False
    return all(k in earlier.state and earlier.state[k] == v for k, v in later.previous.items())


def replaces(new: Mark, old: Mark) -> bool:
    """Whether the values `new`'s event sets replace those `old`'s event set (rules above)."""
    if new.event_id == old.event_id:
        return True
    same_object = new.object_id is not None and new.object_id == old.object_id
    if same_object and new.stage != old.stage:
        return new.stage > old.stage
    if (
        new.subscription_id is not None
        and new.subscription_id == old.subscription_id
        and new.ends_subscription != old.ends_subscription
    ):
        return new.ends_subscription
    if new.created != old.created:
        return new.created > old.created
    if same_object:
        after, before = _follows(new, old), _follows(old, new)
        if after != before:
            return after
        if new.moment is not None and old.moment is not None and new.moment != old.moment:
            return new.moment > old.moment
    return (TYPE_ORDER.get(new.type, OTHER_TYPES), new.event_id) > (
        TYPE_ORDER.get(old.type, OTHER_TYPES),
        old.event_id,
    )


class Watermarks:
    """Per owner, which event last set each field of an owner (`owner.status`, `membership.endDate`,
    ...), with the Marks of those events: the JSON of StripeOwnerState.applied,
    `{"fields": {key: event_id}, "events": {event_id: mark}}`. The form stored before these
    rules, `{key: [created, event_id]}`, is read too."""

    def __init__(self, stored: dict[str, Any] | None) -> None:
        stored = stored or {}
        self.fields: dict[str, str] = {}
        self.events: dict[str, Mark] = {}
        if "fields" in stored and isinstance(stored.get("events"), dict):
            self.fields = {str(k): str(v) for k, v in stored["fields"].items()}
            self.events = {str(k): Mark.from_json(v) for k, v in stored["events"].items()}
        else:
            for key, pair in stored.items():
                mark = Mark.from_json(pair)
                self.fields[key] = mark.event_id
                self.events.setdefault(mark.event_id, mark)

    def mark(self, key: str) -> Mark | None:
        event_id = self.fields.get(key)
        return self.events.get(event_id) if event_id is not None else None

    def take(self, key: str, mark: Mark) -> bool:
        """Record `mark`'s event as the setter of `key` if it replaces the one there; False
        (and nothing recorded) if the value there is newer."""
        current = self.mark(key)
        if current is not None and not replaces(mark, current):
            return False
        self.fields[key] = mark.event_id
        self.events[mark.event_id] = mark
        return True

    def to_json(self) -> dict[str, Any]:
        """As stored; marks no field refers to any more are dropped."""
        used = set(self.fields.values())
        return {
            "fields": dict(self.fields),
            "events": {k: m.to_json() for k, m in self.events.items() if k in used},
        }
