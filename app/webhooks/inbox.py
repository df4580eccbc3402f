"""The webhook inbox: every verified event from Stripe or HubSpot stored once, claimed by a
processor, handled by its source's handler, listed and replayed by ops.

Receiving does no processing: a verified event is one INSERT ... ON CONFLICT DO NOTHING (unique
source + the source's event id), so the sender gets its 200 at once and a repeat delivery
changes nothing. The InboxProcessor then claims due `received` rows (oldest event first, FOR
UPDATE SKIP LOCKED, under a lease: a processor that dies gives its rows back when the lease
ends), hands them to the source's Handler, and stamps each one handled only when its handler
says so. Events are addressed by our row id; a source's own id is only ever a filter.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import dialect_insert, transaction, utcnow
from app.errors import NotFound
from app.models import Record
from app.records import Kind
from app.runtime import Poller
from app.webhooks.models import EventStatus, WebhookEvent

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # a claimed event comes back to the inbox after this if not stamped
MAX_ATTEMPTS = 5  # a handler that keeps raising on an event gives up on it after this many
RETRY_BASE = 2.0  # seconds, doubled per attempt
RETRY_MAX = 3600.0


@dataclass(frozen=True, slots=True)
class Incoming:
    """A verified event, ready to store."""

    source: str  # "stripe" or "hubspot"
    external_id: str  # the source's own event id
    type: str
    body: str  # as received (one event)
    event_created: datetime
    handled: bool  # a type its handler acts on; else stored as `ignored`
    owner_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Handled:
    """A handler's verdict on one event. `received` means: try again after `retry_after`."""

    status: EventStatus
    reason: str | None = None
    owner_id: str | None = None
    retry_after: float | None = None
    enqueued: int = 0  # delivery jobs its effects queued

    @classmethod
    def retry(cls, reason: str, seconds: float) -> Handled:
        return cls(EventStatus.received, reason, retry_after=seconds)


class Handler(Protocol):
    """One source's handling of the events it sent. Handling an event twice must be harmless:
    delivery is at least once (a processor can die between handling and stamping)."""

    source: str
    batch_size: int

    async def handle(self, events: Sequence[WebhookEvent]) -> dict[int, Handled]:
        """Handle events (oldest first); a verdict per row id. A row left out, or an exception
        raised for the whole batch, means: the same again later, with backoff."""
        ...


def headers_to_keep(headers: Mapping[str, str], unstored: frozenset[str]) -> dict[str, str]:
    """The delivery's headers, lower-cased, without signatures and credentials."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in unstored}


async def store(
    session: AsyncSession, events: Sequence[Incoming], headers: dict[str, str]
) -> list[bool]:
    """Store each event once; for each, whether it was new (False: a repeat delivery)."""
    now = utcnow()
    new: list[bool] = []
    for event in events:
        stmt = (
            dialect_insert(session)(WebhookEvent)
            .values(
                source=event.source,
                external_id=event.external_id,
                type=event.type[:128],
                headers=headers,
                body=event.body,
                event_created=event.event_created,
                received_at=now,
                status=(EventStatus.received if event.handled else EventStatus.ignored).value,
                reason=None if event.handled else f"event type {event.type} is not handled",
                attempts=0,
                run_after=now,
                owner_id=event.owner_id,
                customer_id=event.customer_id,
            )
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(WebhookEvent.id)
        )
        new.append(await session.scalar(stmt) is not None)
    return new


# -- processing ----------------------------------------------------------------------------------


def retry_delay(attempts: int) -> float:
    """Seconds before an event whose handling failed is tried again: doubling, capped, jittered."""
    delay = min(RETRY_MAX, RETRY_BASE * 2 ** max(attempts - 1, 0))
    return float(delay * random.uniform(0.75, 1.0))


class InboxProcessor(Poller):
    """Claims due events of each source and hands them to that source's handler."""

    label = "webhook inbox"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Sequence[Handler],
        *,
        poll_interval: float = 0.5,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.handlers = {h.source: h for h in handlers}
        self.poll_interval = poll_interval
        self.on_enqueued = on_enqueued  # wakes the delivery worker for jobs effects queued
        self._next_sweep = 0.0

    async def pending(self) -> int:
        """Received events of the sources handled here, due or not."""
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(
                    WebhookEvent.source.in_(list(self.handlers)),
                    WebhookEvent.status == EventStatus.received.value,
                )
            )
        return int(count or 0)

    async def run_once(self) -> int:
        await self._sweep()
        handled = 0
        for handler in self.handlers.values():
            handled += await self.process(handler)
        return handled

    async def process(self, handler: Handler) -> int:
        """Claim up to a batch of the source's due events, handle them, stamp the verdicts."""
        rows = await self._claim(handler.source, handler.batch_size)
        if not rows:
            return 0
        try:
            verdicts = await handler.handle(rows)
        except Exception as exc:
            log.warning("%s events: handling failed, left for later: %s", handler.source, exc)
            verdicts = {}
            reason = f"{type(exc).__name__}: {exc}"[:500]
        else:
            reason = "its handler gave no verdict"
        now = utcnow()
        async with transaction(self.sessions) as session:
            for row in rows:
                verdict = verdicts.get(row.id) or Handled.retry(reason, retry_delay(row.attempts))
                await _stamp(session, row, verdict, now)
        if any(v.enqueued for v in verdicts.values()):
            self.on_enqueued()
        return len(rows)

    async def _claim(self, source: str, limit: int) -> list[WebhookEvent]:
        now = utcnow()
        async with transaction(self.sessions) as session:
            due = (
                select(WebhookEvent.id)
                .where(
                    WebhookEvent.source == source,
                    WebhookEvent.status == EventStatus.received.value,
                    WebhookEvent.run_after <= now,
                )
                .order_by(WebhookEvent.event_created, WebhookEvent.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            claimed = await session.scalars(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(due.scalar_subquery()))
                .values(
                    run_after=now + timedelta(seconds=LEASE_SECONDS),
                    attempts=WebhookEvent.attempts + 1,
                )
                .returning(WebhookEvent)
                .execution_options(synchronize_session=False)
            )
            rows = list(claimed)
        return sorted(rows, key=lambda r: (r.event_created, r.id))

    async def _sweep(self) -> None:
        """The safety net behind the accept path's hook: unmatched events whose owner (or whose
        customer's membership) is known by now go back to the queue, every 30 s."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 30.0
        async with transaction(self.sessions) as session:
            requeued = await requeue_resolvable(session)
        if requeued:
            log.info("%d unmatched events queued again: their owner is known now", requeued)


async def _stamp(session: AsyncSession, row: WebhookEvent, verdict: Handled, now: datetime) -> None:
    values: dict[str, Any] = {"status": verdict.status.value, "reason": verdict.reason}
    if verdict.status is EventStatus.received:
        if verdict.retry_after is None and row.attempts >= MAX_ATTEMPTS:
            values["status"] = EventStatus.failed.value
            values["reason"] = f"{verdict.reason} (gave up after {row.attempts} attempts)"
            values["processed_at"] = now
        else:
            wait = verdict.retry_after if verdict.retry_after is not None else 0.0
            values["run_after"] = now + timedelta(seconds=max(wait, retry_delay(row.attempts)))
    else:
        values["processed_at"] = now
    if verdict.owner_id is not None:
        values["owner_id"] = verdict.owner_id
    # Fenced by the claim: a replay (or another processor's claim after our lease ran out)
    # changed `attempts` or `run_after`, and then this verdict is stale and dropped.
    await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == row.id,
            WebhookEvent.status == EventStatus.received.value,
            WebhookEvent.attempts == row.attempts,
            WebhookEvent.run_after == row.run_after,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# -- ops: list, look at, replay ----------------------------------------------------------------


async def list_events(
    session: AsyncSession,
    *,
    source: str | None = None,
    status: EventStatus | None = None,
    event_type: str | None = None,
    owner_id: str | None = None,
    event_id: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[WebhookEvent]:
    """Newest first; `before` (a row id) pages on; `event_id` finds the source's own id."""
    stmt = select(WebhookEvent)
    if source is not None:
        stmt = stmt.where(WebhookEvent.source == source)
    if status is not None:
        stmt = stmt.where(WebhookEvent.status == status.value)
    if event_type:
        stmt = stmt.where(WebhookEvent.type == event_type)
    if owner_id:
        stmt = stmt.where(WebhookEvent.owner_id == owner_id)
    if event_id:
        stmt = stmt.where(WebhookEvent.external_id == event_id)
    if before is not None:
        stmt = stmt.where(WebhookEvent.id < before)
    return list(await session.scalars(stmt.order_by(WebhookEvent.id.desc()).limit(limit)))


async def count_by_status(session: AsyncSession, source: str | None = None) -> dict[str, int]:
    stmt = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    if source is not None:
        stmt = stmt.where(WebhookEvent.source == source)
    return {status: int(n) for status, n in await session.execute(stmt)}


async def get_event(session: AsyncSession, row_id: int) -> WebhookEvent:
    found = await session.get(WebhookEvent, row_id, populate_existing=True)
    if found is None:
        raise NotFound(f"webhook event {row_id} is not in the inbox")
    return found


async def replay(
    session: AsyncSession,
    *,
    ids: Sequence[int] = (),
    status: EventStatus | None = None,
    source: str | None = None,
    by: str = "ops",
) -> int:
    """Queue events for handling again: those named (row ids), or all with `status` (of one
    source, if given). Handling an event twice is harmless."""
    if not ids and status is None:
        return 0
    where: list[ColumnElement[bool]] = []
    if ids:
        where.append(WebhookEvent.id.in_(list(ids)))
    if status is not None:
        where.append(WebhookEvent.status == status.value)
    if source is not None:
        where.append(WebhookEvent.source == source)
    result = await session.execute(
        update(WebhookEvent)
        .where(*where)
        .values(
            status=EventStatus.received.value,
            reason=f"replay requested by {by}",
            attempts=0,
            run_after=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- unmatched events come back when the owner they name does -----------------------------------


async def requeue_waiting_for(
    session: AsyncSession,
    *,
    owner_ids: Sequence[str] = (),
    customer_ids: Sequence[str] = (),
    with_memberships: bool = False,
) -> int:
    """Unmatched events naming one of these owners, or (naming no owner) one of these Stripe
    customers, go back to the queue. `with_memberships`: also the customers on these owners'
    memberships."""
    owners = [o for o in owner_ids if o]
    customers = [c for c in customer_ids if c]
    if with_memberships and owners:
        rows = await session.scalars(
            select(Record.data["stripeCustomerId"].as_string()).where(
                Record.kind == Kind.membership.value, Record.external_id.in_(owners)
            )
        )
        customers += [c for c in rows if c]
    conditions: list[ColumnElement[bool]] = []
    if owners:
        conditions.append(WebhookEvent.owner_id.in_(owners))
    if customers:
        conditions.append(
            and_(WebhookEvent.owner_id.is_(None), WebhookEvent.customer_id.in_(customers))
        )
    if not conditions:
        return 0
    return await _requeue_unmatched(session, or_(*conditions))


async def requeue_resolvable(session: AsyncSession) -> int:
    """Unmatched events whose owner, or whose customer's membership, is known by now."""
    owners = select(Record.external_id).where(Record.kind == Kind.owner.value)
    customers = select(Record.data["stripeCustomerId"].as_string()).where(
        Record.kind == Kind.membership.value
    )
    return await _requeue_unmatched(
        session,
        or_(
            WebhookEvent.owner_id.in_(owners.scalar_subquery()),
            and_(
                WebhookEvent.owner_id.is_(None),
                WebhookEvent.customer_id.in_(customers.scalar_subquery()),
            ),
        ),
    )


async def _requeue_unmatched(session: AsyncSession, which: ColumnElement[bool]) -> int:
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.status == EventStatus.unmatched.value, which)
        .values(
            status=EventStatus.received.value,
            reason="its owner is known now: queued again",
            attempts=0,
            run_after=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
