"""Stripe's side of the webhook inbox: verify a delivery (the stripe library, 300 s tolerance),
read it into an inbox row, and the handler that applies stored events to owners' records.

Each event is applied in its own transaction, which locks the owner's record and its applied
state, so two events for one owner never interleave. Applying writes only our own tables:
snapshots go through the normal accept path (record + outbox jobs), so a CRM being down delays
deliveries but never processing, and never makes Stripe retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import dialect_insert, is_postgres, transaction, utcnow
from app.errors import AppError
from app.models import Record
from app.records import Activity, Kind, Membership, Note, Owner
from app.settings import Settings
from app.sync.accept import accept_one, load_record
from app.webhooks.inbox import Handled, Incoming, requeue_waiting_for
from app.webhooks.models import EventStatus, StripeOwnerState, WebhookEvent
from app.webhooks.stripe_events import HANDLED, SOURCE, EventError, effects, parse_event, refs
from app.webhooks.stripe_fetch import Fetched, StripeObjects
from app.webhooks.stripe_order import Mark, Watermarks, mark_of

log = logging.getLogger(__name__)

SIGNATURE_TOLERANCE = 300  # seconds; Stripe's own default
# Left out of the stored headers: the signature (useless once checked) and anything secret.
UNSTORED_HEADERS = frozenset({"stripe-signature", "authorization", "cookie", "proxy-authorization"})


class BadWebhook(AppError):
    """A delivery we cannot trust or read: 400, and nothing stored."""

    status_code = 400


def verify(body: bytes, signature: str | None, secret: str) -> Incoming:
    """The event, ready to store, if `signature` (the Stripe-Signature header) signs `body`
    with `secret` within the tolerance and the body is a Stripe event. Raises BadWebhook.
    (https://docs.stripe.com/webhooks#verify-events)"""
    if not signature:
        raise BadWebhook("Stripe-Signature: header missing", field="Stripe-Signature")
    try:
        stripe.WebhookSignature.verify_header(body, signature, secret, SIGNATURE_TOLERANCE)
    except stripe.SignatureVerificationError as exc:
        raise BadWebhook(
            f"Stripe-Signature: {exc.user_message or exc}", field="Stripe-Signature"
        ) from None
    except UnicodeDecodeError:
        raise BadWebhook("body: not UTF-8 text", field="body") from None
    try:
        event = parse_event(body)
    except EventError as exc:
        raise BadWebhook(str(exc), field="body") from None
    about = refs(event)
    return Incoming(
        source=SOURCE,
        external_id=event["id"],
        type=event["type"],
        body=body.decode(),
        event_created=datetime.fromtimestamp(event["created"], UTC),
        handled=event["type"] in HANDLED,
        owner_id=about.owner_id,
        customer_id=about.customer_id,
    )


@dataclass(slots=True)
class Applied:
    """One event's outcome, for its inbox row and the log."""

    status: EventStatus
    reason: str | None = None
    owner_id: str | None = None
    enqueued: int = 0
    changes: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = self.changes or ["nothing new"]
        if self.stale:
            parts.append("older than the applied state: " + ", ".join(self.stale))
        return "; ".join(parts)


async def _owner_of_customer(session: AsyncSession, customer_id: str) -> str | None:
    """The website user whose membership carries this Stripe customer id."""
    found = await session.scalar(
        select(Record.external_id)
        .where(
            Record.kind == Kind.membership.value,
            Record.data["stripeCustomerId"].as_string() == customer_id,
        )
        .order_by(Record.updated_at.desc())
        .limit(1)
    )
    return str(found) if found else None


async def _lock_state(session: AsyncSession, owner_id: str) -> StripeOwnerState:
    await session.execute(
        dialect_insert(session)(StripeOwnerState)
        .values(owner_id=owner_id, applied={}, counted_failures=[], updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["owner_id"])
    )
    stmt = select(StripeOwnerState).where(StripeOwnerState.owner_id == owner_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    state = (await session.scalars(stmt.execution_options(populate_existing=True))).one()
    return state


def _newer(
    watermarks: Watermarks, scope: str, fields: dict[str, Any], mark: Mark, stale: list[str]
) -> dict[str, Any]:
    """The fields no newer event has set (stripe_order's rules), recording this event as
    their setter; the others are named in `stale`."""
    fresh: dict[str, Any] = {}
    for name, value in fields.items():
        key = f"{scope}.{name}"
        if watermarks.take(key, mark):
            fresh[name] = value
        else:
            stale.append(key)
    return fresh


def _fields(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Validated and dumped the way the sync API dumps the website's records."""
    dumped: dict[str, Any] = model.model_validate(values).model_dump(
        mode="json", exclude_unset=True
    )
    return dumped


async def apply_event(
    session: AsyncSession,
    row: WebhookEvent,
    settings: Settings,
    fetched: Fetched | None = None,
) -> Applied:
    """Resolve the event's owner and apply what it means, in the caller's transaction.
    `fetched`: its subscription or invoice as read from Stripe just before (STRIPE_API_KEY),
    whose state is applied instead of the payload's."""
    event = parse_event(row.body)
    about = refs(event)
    owner_id = about.owner_id
    if owner_id is None and about.customer_id:
        owner_id = await _owner_of_customer(session, about.customer_id)
    if owner_id is None:
        customer = f"customer {about.customer_id}" if about.customer_id else "no customer"
        return Applied(
            EventStatus.unmatched,
            f"names no owner: no userId/ownerId in its metadata, no client_reference_id, "
            f"and {customer} is on no membership",
        )
    # The owner's record is locked first, before anything of its children: the delivery worker
    # takes its locks parent first too (links, then the children's jobs), so the two never
    # wait on each other in a circle. It also serialises events for one owner.
    if await load_record(session, Kind.owner, owner_id, for_update=True) is None:
        return Applied(
            EventStatus.unmatched,
            f"owner {owner_id} is not known here yet; it is applied once the owner is synced",
            owner_id=owner_id,
        )
    current = fetched.current if fetched else None
    found = effects(event, owner_id, current)
    if found.ignore:
        return Applied(EventStatus.ignored, found.ignore, owner_id=owner_id)

    providers, region = settings.providers, settings.phone_default_region
    event_id = str(event["id"])
    mark = mark_of(event, about.subscription_id, current)
    outcome = Applied(EventStatus.processed, owner_id=owner_id)
    if current is not None:
        outcome.changes.append("state read from Stripe's API")
    elif fetched is not None:
        outcome.changes.append(f"state from the event ({fetched.problem})")
    state = await _lock_state(session, owner_id)
    watermarks = Watermarks(state.applied)

    # Parent first, then children (the owner's jobs, then the membership's, then the notes'):
    # the order the delivery worker locks jobs in when it wakes a parent's children.
    if found.owner_status:
        status = _newer(watermarks, "owner", {"status": found.owner_status}, mark, outcome.stale)
        if status:
            values = _fields(Owner, {"userId": owner_id, **status})
            _, queued = await accept_one(session, Kind.owner, values, providers, region)
            outcome.enqueued += queued
            outcome.changes.append(f"owner {found.owner_status}")

    membership = _newer(watermarks, "membership", found.membership, mark, outcome.stale)
    if found.count_failure and event_id not in (state.counted_failures or []):
        stored = await load_record(session, Kind.membership, owner_id)
        count = int((stored.data if stored else {}).get("paymentFailureCount") or 0)
        membership["paymentFailureCount"] = count + 1
        state.counted_failures = [*(state.counted_failures or []), event_id]
    if membership:
        values = _fields(Membership, {"userId": owner_id, **membership})
        _, queued = await accept_one(session, Kind.membership, values, providers, region)
        outcome.enqueued += queued
        outcome.changes.append("membership " + ", ".join(sorted(membership)))

    for kind, model, items in (
        (Kind.note, Note, found.notes),
        (Kind.activity, Activity, found.activities),
    ):
        for item in items:
            _, queued = await accept_one(session, kind, _fields(model, item), providers, region)
            outcome.enqueued += queued
        if items:
            outcome.changes.append(f"{len(items)} {kind.value}{'s' if len(items) > 1 else ''}")

    state.applied = watermarks.to_json()
    state.updated_at = utcnow()
    # Events waiting for this owner, or naming only this customer (its membership now says
    # whose it is), can be applied now.
    await requeue_waiting_for(
        session,
        owner_ids=[owner_id],
        customer_ids=[about.customer_id] if about.customer_id else [],
    )
    return outcome


class StripeHandler:
    """Applies Stripe events, one transaction each, oldest first."""

    source = SOURCE
    batch_size = 100

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    async def handle(self, events: Sequence[WebhookEvent]) -> dict[int, Handled]:
        verdicts: dict[int, Handled] = {}
        key = self.settings.stripe_api_key
        async with StripeObjects(key) if key else nullcontext() as stripe_api:
            for row in events:
                verdicts[row.id] = await self._one(row, stripe_api)
        return verdicts

    async def _one(self, row: WebhookEvent, stripe_api: StripeObjects | None) -> Handled:
        try:
            # Read before the transaction: no lock is held while Stripe answers.
            fetched = await stripe_api.current(parse_event(row.body)) if stripe_api else None
            async with transaction(self.sessions) as session:
                outcome = await apply_event(session, row, self.settings, fetched)
        except EventError as exc:  # the stored body is unusable: retrying cannot help
            log.error("stripe event %s failed: %s", row.external_id, exc)
            return Handled(EventStatus.failed, str(exc))
        except Exception as exc:
            log.warning(
                "stripe event %s raised (attempt %d): %s", row.external_id, row.attempts, exc
            )
            # Tried again with backoff, and failed after inbox.MAX_ATTEMPTS.
            return Handled(EventStatus.received, f"{type(exc).__name__}: {exc}"[:500])
        said = outcome.summary() if outcome.status is EventStatus.processed else outcome.reason
        log.info("stripe event %s %s: %s", row.external_id, outcome.status, said)
        return Handled(outcome.status, said, owner_id=outcome.owner_id, enqueued=outcome.enqueued)


def headers_of(headers: Mapping[str, str]) -> dict[str, str]:
    """What of a Stripe delivery's headers is kept with the event."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS}
