"""The Stripe processor: applies received events to owners' records, after Stripe has its 200.

Each event is applied in its own transaction, which claims its inbox row (FOR UPDATE SKIP
LOCKED on PostgreSQL, so processors in several workers share the inbox) and locks the owner's
applied state, so two events for one owner never interleave. Applying writes only our own
tables: snapshots go through the normal pipeline (accept: record + outbox jobs), so a CRM being
down delays deliveries but never processing, and never makes Stripe retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction, utcnow
from app.models import Record
from app.records import Activity, Kind, Membership, Note, Owner
from app.settings import Settings
from app.sync.service import accept, is_postgres, load_record
from app.webhooks.inbox import requeue_resolvable, requeue_unmatched
from app.webhooks.models import EventStatus, StripeOwnerState, WebhookEvent
from app.webhooks.stripe_events import SOURCE, EventError, effects, parse_event, refs

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # an event whose processing keeps raising is `failed` after this many
RETRY_BASE = 2.0  # seconds, doubled per attempt
RETRY_MAX = 300.0
SWEEP_EVERY = 30.0  # seconds between looks for unmatched events whose owner is known now


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
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    await session.execute(
        insert(StripeOwnerState)
        .values(owner_id=owner_id, applied={}, counted_failures=[], updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["owner_id"])
    )
    stmt = select(StripeOwnerState).where(StripeOwnerState.owner_id == owner_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    state = (await session.scalars(stmt.execution_options(populate_existing=True))).one()
    return state


def _newer(
    state: StripeOwnerState,
    scope: str,
    fields: dict[str, Any],
    created: int,
    event_id: str,
    stale: list[str],
) -> dict[str, Any]:
    """The fields no newer event has set (ties apply: same-second events keep arrival order),
    recording this event as their setter."""
    applied = dict(state.applied or {})
    fresh: dict[str, Any] = {}
    for name, value in fields.items():
        key = f"{scope}.{name}"
        mark = applied.get(key)
        if mark is not None and int(mark[0]) > created:
            stale.append(key)
            continue
        fresh[name] = value
        applied[key] = [created, event_id]
    state.applied = applied
    return fresh


def _fields(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """Validated and dumped the way the sync API dumps the website's records."""
    dumped: dict[str, Any] = model.model_validate(values).model_dump(
        mode="json", exclude_unset=True
    )
    return dumped


async def apply_event(session: AsyncSession, row: WebhookEvent, settings: Settings) -> Applied:
    """Resolve the event's owner and apply what it means, in the caller's transaction."""
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
    found = effects(event, owner_id)
    if found.ignore:
        return Applied(EventStatus.ignored, found.ignore, owner_id=owner_id)

    providers, region = settings.providers, settings.phone_default_region
    created, event_id = int(event["created"]), str(event["id"])
    outcome = Applied(EventStatus.processed, owner_id=owner_id)
    state = await _lock_state(session, owner_id)

    # Parent first, then children (the owner's jobs, then the membership's, then the notes'):
    # the order the delivery worker locks jobs in when it wakes a parent's children.
    if found.owner_status:
        status = _newer(
            state, "owner", {"status": found.owner_status}, created, event_id, outcome.stale
        )
        if status:
            values = _fields(Owner, {"userId": owner_id, **status})
            accepted = await accept(session, Kind.owner, values, providers, region)
            outcome.enqueued += accepted.enqueued
            outcome.changes.append(f"owner {found.owner_status}")

    membership = _newer(state, "membership", found.membership, created, event_id, outcome.stale)
    if found.count_failure and event_id not in (state.counted_failures or []):
        stored = await load_record(session, Kind.membership, owner_id)
        count = int((stored.data if stored else {}).get("paymentFailureCount") or 0)
        membership["paymentFailureCount"] = count + 1
        state.counted_failures = [*(state.counted_failures or []), event_id]
    if membership:
        values = _fields(Membership, {"userId": owner_id, **membership})
        accepted = await accept(session, Kind.membership, values, providers, region)
        outcome.enqueued += accepted.enqueued
        outcome.changes.append("membership " + ", ".join(sorted(membership)))

    for kind, model, items in (
        (Kind.note, Note, found.notes),
        (Kind.activity, Activity, found.activities),
    ):
        for item in items:
            accepted = await accept(session, kind, _fields(model, item), providers, region)
            outcome.enqueued += accepted.enqueued
        if items:
            outcome.changes.append(f"{len(items)} {kind.value}{'s' if len(items) > 1 else ''}")

    state.updated_at = utcnow()
    # Events waiting for this owner, or naming only this customer (its membership now says
    # whose it is), can be applied now.
    await requeue_unmatched(
        session,
        owner_ids=[owner_id],
        customer_ids=[about.customer_id] if about.customer_id else [],
    )
    return outcome


def retry_delay(attempts: int) -> float:
    return float(min(RETRY_MAX, RETRY_BASE * 2 ** max(attempts - 1, 0)))


class StripeProcessor:
    """Runs beside the delivery worker (in the API process by default, and in `crm-sync
    worker`): applies received Stripe events, one transaction each, oldest event first."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        on_enqueued: Callable[[], None] | None = None,
        batch: int = 200,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.on_enqueued = on_enqueued  # wakes the delivery worker for the jobs just queued
        self.batch = batch
        self._wake = asyncio.Event()
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        """Process until `stop` is set; with `drain`, return once nothing is waiting."""
        poll = self.settings.delivery.poll_interval
        while not stop.is_set():
            try:
                await self._sweep()
                handled = await self.run_once()
            except Exception:  # the loop must outlive a bad round (database restart, bug)
                log.exception("stripe processor round failed; retrying")
                handled = 0
                await asyncio.sleep(poll)
            if handled:
                continue
            if drain and not await self.pending(due_only=False):
                return
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    async def pending(self, *, due_only: bool = True) -> int:
        """Received events (due now, or at all)."""
        stmt = (
            select(func.count())
            .select_from(WebhookEvent)
            .where(
                WebhookEvent.source == SOURCE,
                WebhookEvent.status == EventStatus.received.value,
            )
        )
        if due_only:
            stmt = stmt.where(WebhookEvent.run_after <= utcnow())
        async with self.sessions() as session:
            return int(await session.scalar(stmt) or 0)

    async def run_once(self) -> int:
        """Apply up to `batch` due events; returns how many were handled."""
        if not await self.pending():  # a plain read first: idle polls take no row locks
            return 0
        handled = 0
        while handled < self.batch and await self.process_next():
            handled += 1
        return handled

    async def process_next(self) -> bool:
        """Claim the oldest due event and apply it. False when there is none."""
        now = utcnow()
        enqueued = 0
        async with transaction(self.sessions) as session:
            row = (
                await session.scalars(
                    select(WebhookEvent)
                    .where(
                        WebhookEvent.source == SOURCE,
                        WebhookEvent.status == EventStatus.received.value,
                        WebhookEvent.run_after <= now,
                    )
                    .order_by(WebhookEvent.event_created, WebhookEvent.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            row_id, event_id, attempts = row.id, row.external_id, row.attempts + 1
            try:
                async with session.begin_nested():
                    outcome = await apply_event(session, row, self.settings)
            except EventError as exc:  # the stored body is unusable: retrying cannot help
                await self._mark(session, row_id, EventStatus.failed, str(exc), attempts, now)
                log.error("stripe event %s failed: %s", event_id, exc)
                return True
            except Exception as exc:
                failed = attempts >= MAX_ATTEMPTS
                reason = f"{type(exc).__name__}: {exc}"
                log.exception("stripe event %s raised (attempt %d)", event_id, attempts)
                await self._mark(
                    session,
                    row_id,
                    EventStatus.failed if failed else EventStatus.received,
                    reason + (f" (gave up after {attempts} attempts)" if failed else ""),
                    attempts,
                    now,
                    retry_at=None if failed else now + timedelta(seconds=retry_delay(attempts)),
                )
                return True
            said = outcome.summary() if outcome.status is EventStatus.processed else outcome.reason
            await self._mark(
                session, row_id, outcome.status, said, attempts, now, owner_id=outcome.owner_id
            )
            enqueued = outcome.enqueued
            log.info("stripe event %s %s: %s", event_id, outcome.status, said)
        if enqueued and self.on_enqueued is not None:
            self.on_enqueued()
        return True

    async def _mark(
        self,
        session: AsyncSession,
        row_id: int,
        status: EventStatus,
        reason: str | None,
        attempts: int,
        now: datetime,
        *,
        owner_id: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "reason": reason, "attempts": attempts}
        if status is not EventStatus.received:
            values["processed_at"] = now
        if retry_at is not None:
            values["run_after"] = retry_at
        if owner_id is not None:
            values["owner_id"] = owner_id
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == row_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def _sweep(self) -> None:
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        async with transaction(self.sessions) as session:
            requeued = await requeue_resolvable(session)
        if requeued:
            log.info("%d unmatched stripe events queued again: their owner is known now", requeued)
