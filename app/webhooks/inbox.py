"""The webhook inbox: verify a Stripe delivery, store it once, and let ops list and replay events.

Receiving does no processing: a verified event is one INSERT ... ON CONFLICT DO NOTHING in its
own transaction, so Stripe gets its 200 at once and a repeat delivery changes nothing. The
processor (stripe_processor.py) picks `received` rows up afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import AppError, NotFound
from app.models import Record
from app.records import Kind
from app.sync.service import is_postgres
from app.webhooks.models import EventStatus, WebhookEvent
from app.webhooks.stripe_events import HANDLED, SOURCE, EventError, parse_event, refs

SIGNATURE_TOLERANCE = 300  # seconds; Stripe's own default
# Left out of the stored headers: the signature (useless once checked) and anything secret.
UNSTORED_HEADERS = frozenset({"stripe-signature", "authorization", "cookie", "proxy-authorization"})


class BadWebhook(AppError):
    """A delivery we cannot trust or read: 400, and nothing stored."""

    status_code = 400


def verify(body: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, if `signature` (the Stripe-Signature header) signs `body` with `secret`
    within the tolerance, and the body is a Stripe event."""
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
        return parse_event(body)
    except EventError as exc:
        raise BadWebhook(str(exc), field="body") from None


@dataclass(frozen=True, slots=True)
class Received:
    event_id: str
    status: EventStatus
    duplicate: bool


async def receive(
    session: AsyncSession, body: bytes, headers: Mapping[str, str], event: dict[str, Any]
) -> Received:
    """Store a verified event once. A type we don't handle is kept, as `ignored`."""
    handled = event["type"] in HANDLED
    status = EventStatus.received if handled else EventStatus.ignored
    about = refs(event)
    now = utcnow()
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    stmt = (
        insert(WebhookEvent)
        .values(
            source=SOURCE,
            external_id=event["id"],
            type=event["type"],
            headers={k.lower(): v for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS},
            body=body.decode(),
            event_created=datetime.fromtimestamp(event["created"], UTC),
            received_at=now,
            status=status.value,
            reason=None if handled else f"event type {event['type']} is not handled",
            attempts=0,
            run_after=now,
            owner_id=about.owner_id,
            customer_id=about.customer_id,
        )
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(WebhookEvent.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    return Received(event["id"], status, duplicate=new_id is None)


# -- ops: list, look at, replay ---------------------------------------------------------------


async def list_events(
    session: AsyncSession,
    *,
    status: EventStatus | None = None,
    event_type: str | None = None,
    owner_id: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[WebhookEvent]:
    """Newest first; `before` (an id) pages on."""
    stmt = select(WebhookEvent).where(WebhookEvent.source == SOURCE)
    if status is not None:
        stmt = stmt.where(WebhookEvent.status == status.value)
    if event_type:
        stmt = stmt.where(WebhookEvent.type == event_type)
    if owner_id:
        stmt = stmt.where(WebhookEvent.owner_id == owner_id)
    if before is not None:
        stmt = stmt.where(WebhookEvent.id < before)
    return list(await session.scalars(stmt.order_by(WebhookEvent.id.desc()).limit(limit)))


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(WebhookEvent.status, func.count())
        .where(WebhookEvent.source == SOURCE)
        .group_by(WebhookEvent.status)
    )
    return {status: int(n) for status, n in rows}


def _ref_clause(ref: str) -> ColumnElement[bool]:
    """Our row id (digits) or Stripe's event id (`evt_...`)."""
    if ref.isdigit():
        return WebhookEvent.id == int(ref)
    return and_(WebhookEvent.source == SOURCE, WebhookEvent.external_id == ref)


async def get_event(session: AsyncSession, ref: str) -> WebhookEvent:
    found = (await session.scalars(select(WebhookEvent).where(_ref_clause(ref)))).one_or_none()
    if found is None:
        raise NotFound(f"webhook event {ref} is not in the inbox")
    return found


async def replay(
    session: AsyncSession,
    *,
    ids: Sequence[str] = (),
    status: EventStatus | None = None,
    by: str = "ops",
) -> int:
    """Queue events for processing again: those named, or all with `status`. Applying an
    event twice is harmless (older state is never re-applied; notes keep their ids)."""
    if not ids and status is None:
        return 0
    where: list[ColumnElement[bool]] = [WebhookEvent.source == SOURCE]
    if ids:
        where.append(or_(*(_ref_clause(r) for r in ids)))
    if status is not None:
        where.append(WebhookEvent.status == status.value)
    now = utcnow()
    result = await session.execute(
        update(WebhookEvent)
        .where(*where)
        .values(
            status=EventStatus.received.value,
            reason=f"replay requested by {by}",
            attempts=0,
            run_after=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- unmatched events come back when their owner does -----------------------------------------


async def requeue_unmatched(
    session: AsyncSession, *, owner_ids: Sequence[str] = (), customer_ids: Sequence[str] = ()
) -> int:
    """Unmatched events naming one of these owners, or (naming no owner) one of these Stripe
    customers, go back to the processor."""
    owners = [o for o in owner_ids if o]
    customers = [c for c in customer_ids if c]
    conditions: list[ColumnElement[bool]] = []
    if owners:
        conditions.append(WebhookEvent.owner_id.in_(owners))
    if customers:
        conditions.append(
            and_(WebhookEvent.owner_id.is_(None), WebhookEvent.customer_id.in_(customers))
        )
    if not conditions:
        return 0
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.source == SOURCE,
            WebhookEvent.status == EventStatus.unmatched.value,
            or_(*conditions),
        )
        .values(
            status=EventStatus.received.value,
            reason="its owner is known now: queued again",
            run_after=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def membership_customer(data: Mapping[str, Any]) -> str | None:
    value = data.get("stripeCustomerId")
    return value if isinstance(value, str) and value else None


async def requeue_unmatched_for(session: AsyncSession, kind: Kind, record: Record) -> int:
    """The sync API's hook: the website just stored an owner (or a membership carrying a Stripe
    customer id), so events that were waiting for it can be applied now."""
    if kind is Kind.owner:
        customers = await session.scalars(
            select(Record.data).where(
                Record.kind == Kind.membership.value, Record.external_id == record.external_id
            )
        )
        found = [c for c in (membership_customer(d) for d in customers) if c]
        return await requeue_unmatched(session, owner_ids=[record.external_id], customer_ids=found)
    if kind is Kind.membership:
        customer = membership_customer(record.data)
        return await requeue_unmatched(session, customer_ids=[customer] if customer else [])
    return 0


async def requeue_resolvable(session: AsyncSession) -> int:
    """The safety net behind the hook (a race with the processor, or owners stored some other
    way): unmatched events whose owner, or whose customer's membership, is known by now."""
    owners = select(Record.external_id).where(Record.kind == Kind.owner.value)
    customers = select(Record.data["stripeCustomerId"].as_string()).where(
        Record.kind == Kind.membership.value
    )
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.source == SOURCE,
            WebhookEvent.status == EventStatus.unmatched.value,
            or_(
                WebhookEvent.owner_id.in_(owners.scalar_subquery()),
                and_(
                    WebhookEvent.owner_id.is_(None),
                    WebhookEvent.customer_id.in_(customers.scalar_subquery()),
                ),
            ),
        )
        .values(
            status=EventStatus.received.value,
            reason="its owner is known now: queued again",
            run_after=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
