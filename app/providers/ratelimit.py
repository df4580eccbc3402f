"""A rolling-window request limit shared by all workers: PostgreSQL, or in-process on SQLite."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import BigInteger, Float, Index, Integer, String, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

log = logging.getLogger(__name__)

# BIGINT on PostgreSQL; INTEGER on SQLite so the column is the rowid and autoincrements.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class RateLimitHit(Base):
    """One request granted (or one counted on the CRM's word) in a bucket, at a database time."""

    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch, the database's clock

    __table_args__ = (Index("ix_rate_limit_hits_bucket_at", "bucket", "at"),)


class RateLimitHold(Base):
    """A bucket nobody may use before `until` (after a 429 told us to wait)."""

    __tablename__ = "rate_limit_holds"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True, slots=True)
class Verdict:
    wait: float  # 0: granted
    hit: int | None = None  # the grant's row (or entry), to settle when its answer comes


@dataclass(frozen=True, slots=True)
class Grant:
    """One slot: `hit` names it for `settle`; `waited` is the seconds spent waiting for it."""

    hit: int | None
    waited: float


class RateLimiter(ABC):
    """At most `limit` grants in any `window + margin` seconds.

    A CRM counts a request when it arrives, some time after we granted it and before its answer
    came back. `reserve` counts the grant at once; `settle` then moves it to the moment the
    answer came (or the call failed), the latest the CRM can have counted it. Spacing grants
    from settled times keeps the CRM's own window under the limit without a guessed margin, so
    the next window's calls start as soon as the rolling window allows (issue 14). `margin`
    only absorbs clock granularity now (and still covers callers that never settle).

    `waited_seconds` and `waits` say how long callers were held (for /metrics); `on_wait` is
    called with each wait."""

    def __init__(
        self,
        bucket: str,
        limit: int,
        *,
        window: float = 10.0,
        margin: float = 0.5,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.bucket = bucket
        self.limit = limit
        self.configured_limit = limit
        self.window = window
        self.margin = margin
        self.on_wait = on_wait
        self.waited_seconds = 0.0
        self.waits = 0
        self.granted = 0

    @property
    def horizon(self) -> float:
        return self.window + self.margin

    async def acquire(self) -> float:
        """Wait for a slot; returns the seconds spent waiting for one (not the bookkeeping).
        The slot stays counted from its grant (see `reserve` for one that is settled)."""
        return (await self.reserve()).waited

    async def reserve(self) -> Grant:
        """Wait for a slot and count it now; call `settle(grant)` once the request's answer came
        (or it failed), so the slot counts from then."""
        waited = 0.0
        while True:
            verdict = await self._try()
            if verdict.wait <= 0:
                hit = verdict.hit
                break
            # Small jitter so waiting workers don't all ask at the same instant.
            pause = min(verdict.wait, 2.0) + random.uniform(0, 0.02)
            await asyncio.sleep(pause)
            waited += pause
        self.granted += 1
        if waited:
            self.waits += 1
            self.waited_seconds += waited
            if self.on_wait is not None:
                self.on_wait(waited)
        return Grant(hit, waited)

    async def settle(self, grant: Grant) -> None:
        """The granted request is answered (or failed): count its slot from now."""
        if grant.hit is not None:
            await self._settle(grant.hit)

    async def observe(self, headers: Mapping[str, str]) -> None:
        """Adjust to the CRM's own view (X-HubSpot-RateLimit-Max/-Remaining/-Interval-
        Milliseconds): never above its limit, and if it counts more requests in its window than
        we do (another app on the same account), count the difference as ours too."""
        maximum = _int(headers.get("x-hubspot-ratelimit-max"))
        remaining = _int(headers.get("x-hubspot-ratelimit-remaining"))
        interval = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
        if interval and interval > 0:
            self.window = max(self.window, interval / 1000)
        if maximum and maximum > 0:
            self.limit = min(self.configured_limit, maximum)
        if maximum is not None and remaining is not None:
            used_there = maximum - remaining
            await self._catch_up(used_there)

    async def hold(self, seconds: float) -> None:
        """Nobody sends before `seconds` from now (a 429 said so)."""
        if seconds > 0:
            await self._hold(seconds)

    @abstractmethod
    async def _try(self) -> Verdict: ...

    @abstractmethod
    async def _settle(self, hit: int) -> None: ...

    @abstractmethod
    async def _catch_up(self, used_there: int) -> None: ...

    @abstractmethod
    async def _hold(self, seconds: float) -> None: ...


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class LocalRateLimiter(RateLimiter):
    """For one process (SQLite runs one worker)."""

    def __init__(
        self, bucket: str, limit: int, *, window: float = 10.0, margin: float = 0.5
    ) -> None:
        super().__init__(bucket, limit, window=window, margin=margin)
        self._hits: dict[int, float] = {}  # grant number -> when it counts from
        self._numbers = itertools.count(1)
        self._hold_until = 0.0
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        cut = now - self.horizon
        for hit in [h for h, at in self._hits.items() if at <= cut]:
            del self._hits[hit]

    def _add(self, now: float) -> int:
        hit = next(self._numbers)
        self._hits[hit] = now
        return hit

    async def _try(self) -> Verdict:
        async with self._lock:
            now = time.monotonic()
            if self._hold_until > now:
                return Verdict(self._hold_until - now)
            self._expire(now)
            if len(self._hits) < self.limit:
                return Verdict(0.0, self._add(now))
            times = sorted(self._hits.values())
            oldest_to_go = times[len(times) - self.limit]
            return Verdict(max(oldest_to_go + self.horizon - now, 0.001))

    async def _settle(self, hit: int) -> None:
        async with self._lock:
            if hit in self._hits:
                self._hits[hit] = max(self._hits[hit], time.monotonic())

    async def _catch_up(self, used_there: int) -> None:
        async with self._lock:
            now = time.monotonic()
            self._expire(now)
            for _ in range(used_there - len(self._hits)):
                self._add(now)

    async def _hold(self, seconds: float) -> None:
        async with self._lock:
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)


class PostgresRateLimiter(RateLimiter):
    """Shared by every worker process on every machine: grants are rows, taken under a
    transaction-scoped advisory lock, timed by the database's clock."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bucket: str,
        limit: int,
        *,
        window: float = 10.0,
        margin: float = 0.5,
    ) -> None:
        super().__init__(bucket, limit, window=window, margin=margin)
        self.sessions = sessions
        self._key = zlib.crc32(f"crm-sync:rate:{bucket}".encode()) - 2**31

    async def _locked(self, session: AsyncSession) -> float:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._key})
        now = float(
            await session.scalar(text("SELECT extract(epoch FROM clock_timestamp())")) or 0.0
        )
        await session.execute(
            text("DELETE FROM rate_limit_hits WHERE bucket = :b AND at <= :cut"),
            {"b": self.bucket, "cut": now - self.horizon},
        )
        return now

    async def _try(self) -> Verdict:
        async with self.sessions() as session, session.begin():
            now = await self._locked(session)
            until = await session.scalar(
                text("SELECT until FROM rate_limit_holds WHERE bucket = :b"), {"b": self.bucket}
            )
            if until is not None and float(until) > now:
                return Verdict(float(until) - now)
            count = int(
                await session.scalar(
                    text("SELECT count(*) FROM rate_limit_hits WHERE bucket = :b"),
                    {"b": self.bucket},
                )
                or 0
            )
            if count < self.limit:
                hit = await session.scalar(
                    text("INSERT INTO rate_limit_hits (bucket, at) VALUES (:b, :at) RETURNING id"),
                    {"b": self.bucket, "at": now},
                )
                return Verdict(0.0, int(hit) if hit is not None else None)
            oldest_to_go = await session.scalar(
                text(
                    "SELECT at FROM rate_limit_hits WHERE bucket = :b ORDER BY at "
                    "OFFSET :skip LIMIT 1"
                ),
                {"b": self.bucket, "skip": count - self.limit},
            )
            return Verdict(max(float(oldest_to_go or now) + self.horizon - now, 0.001))

    async def _settle(self, hit: int) -> None:
        # No advisory lock: moving one granted row later only ever makes others wait longer.
        async with self.sessions() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE rate_limit_hits SET at = greatest(at, "
                    "extract(epoch FROM clock_timestamp())) WHERE id = :id"
                ),
                {"id": hit},
            )

    async def _catch_up(self, used_there: int) -> None:
        if used_there <= 0:
            return
        async with self.sessions() as session, session.begin():
            now = await self._locked(session)
            await session.execute(
                text(
                    "INSERT INTO rate_limit_hits (bucket, at) "
                    "SELECT :b, :at FROM generate_series(1, "
                    "  :used - (SELECT count(*) FROM rate_limit_hits WHERE bucket = :b))"
                ),
                {"b": self.bucket, "at": now, "used": used_there},
            )

    async def _hold(self, seconds: float) -> None:
        async with self.sessions() as session, session.begin():
            now = await self._locked(session)
            await session.execute(
                text(
                    "INSERT INTO rate_limit_holds (bucket, until) VALUES (:b, :u) "
                    "ON CONFLICT (bucket) DO UPDATE "
                    "SET until = greatest(rate_limit_holds.until, excluded.until)"
                ),
                {"b": self.bucket, "u": now + seconds},
            )


def make_rate_limiter(
    sessions: async_sessionmaker[AsyncSession] | None,
    bucket: str,
    limit: int,
    *,
    margin: float = 0.5,
    window: float = 10.0,
) -> RateLimiter:
    """PostgreSQL-coordinated when the database is PostgreSQL, in-process otherwise. Time spent
    waiting is counted in /metrics (crm_sync_rate_limit_wait_seconds, labelled by bucket)."""
    from app import metrics

    def counted(seconds: float) -> None:
        metrics.wait_for_rate_limit(bucket, seconds)

    bind = sessions.kw.get("bind") if sessions is not None else None
    limiter: RateLimiter
    if sessions is not None and bind is not None and bind.dialect.name == "postgresql":
        limiter = PostgresRateLimiter(sessions, bucket, limit, margin=margin, window=window)
    else:
        limiter = LocalRateLimiter(bucket, limit, margin=margin, window=window)
    limiter.on_wait = counted
    return limiter
