"""Per-provider circuit breakers, kept in the database so every worker holds a failing provider
and GET /api/crm/status and /metrics can show it from any process.

closed -> open after DELIVERY_BREAKER_THRESHOLD failing calls in a row (every record of the call
failed with a 5xx, a timeout, a dropped connection or bad credentials: the CRM, not the
record). While open, no job of the provider is claimed, so queued records use up nothing. At
`retry_at` one worker wins the probe (open -> half_open) and sends one record: success closes
the breaker, failure opens it again for twice as long (up to DELIVERY_BREAKER_COOLDOWN_MAX)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert
from app.models import BreakerState, ProviderBreaker
from app.providers.base import FailureKind, Outcome
from app.settings import DeliverySettings

# Failures that say the CRM is unwell; a rejection (4xx) or a 429 says it is working.
OUTAGE = frozenset({FailureKind.transient, FailureKind.timeout, FailureKind.unauthorized})


@dataclass(frozen=True, slots=True)
class Gate:
    """What a worker may claim this round: providers held, and those it is to probe."""

    held: frozenset[str]
    probe: frozenset[str]


def call_failed(outcomes: Sequence[Outcome]) -> str | None:
    """The error if a call failed as a whole (every record with an outage kind), else None."""
    errors = [o.error for o in outcomes]
    if errors and all(e is not None and e.kind in OUTAGE for e in errors):
        return errors[0].message if errors[0] else None
    return None


async def breakers(session: AsyncSession, providers: Sequence[str]) -> dict[str, ProviderBreaker]:
    rows = await session.scalars(
        select(ProviderBreaker).where(ProviderBreaker.provider.in_(list(providers)))
    )
    return {row.provider: row for row in rows}


async def gate(
    session: AsyncSession, providers: Sequence[str], now: datetime, probe_lease: float
) -> Gate:
    """Which providers are held; an open breaker past its `retry_at` is taken for a probe by
    exactly one worker (a conditional update), which then claims one job of it."""
    held: set[str] = set()
    probe: set[str] = set()
    for name, row in (await breakers(session, providers)).items():
        if row.state == BreakerState.closed:
            continue
        if row.retry_at is not None and row.retry_at > now:
            held.add(name)
            continue
        won = await session.execute(
            update(ProviderBreaker)
            .where(
                ProviderBreaker.provider == name,
                ProviderBreaker.state != BreakerState.closed.value,
                ProviderBreaker.retry_at == row.retry_at,
            )
            .values(
                state=BreakerState.half_open.value,
                retry_at=now + timedelta(seconds=probe_lease),  # a probe that dies is retaken
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        (probe if won.rowcount else held).add(name)  # type: ignore[attr-defined]
    return Gate(frozenset(held), frozenset(probe))


async def no_probe(session: AsyncSession, provider: str, now: datetime) -> None:
    """The probe found no due job: back to open, due again at once (the next round looks)."""
    await session.execute(
        update(ProviderBreaker)
        .where(
            ProviderBreaker.provider == provider,
            ProviderBreaker.state == BreakerState.half_open.value,
        )
        .values(state=BreakerState.open.value, retry_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def record(
    session: AsyncSession,
    provider: str,
    error: str | None,
    now: datetime,
    settings: DeliverySettings,
) -> BreakerState:
    """A call's outcome (`error` None: the CRM answered). Returns the breaker's state after."""
    if error is None:
        await session.execute(
            update(ProviderBreaker)
            .where(
                ProviderBreaker.provider == provider,
                (ProviderBreaker.state != BreakerState.closed.value)
                | (ProviderBreaker.failures != 0),
            )
            .values(
                state=BreakerState.closed.value,
                failures=0,
                opens=0,
                retry_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return BreakerState.closed
    await session.execute(
        dialect_insert(session)(ProviderBreaker)
        .values(
            provider=provider,
            state=BreakerState.closed.value,
            failures=0,
            opens=0,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["provider"])
    )
    row = (
        await session.scalars(
            select(ProviderBreaker)
            .where(ProviderBreaker.provider == provider)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    row.failures += 1
    row.last_error = error[:1000]
    row.updated_at = now
    probing = row.state == BreakerState.half_open
    if probing or (row.state == BreakerState.closed and row.failures >= settings.breaker_threshold):
        row.opens += 1
        cooldown = min(
            settings.breaker_cooldown * 2 ** (row.opens - 1), settings.breaker_cooldown_max
        )
        row.state = BreakerState.open.value
        row.opened_at = row.opened_at if probing else now
        row.retry_at = now + timedelta(seconds=cooldown)
    return BreakerState(row.state)
