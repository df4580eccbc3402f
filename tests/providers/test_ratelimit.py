"""The rate limit shared by workers: never more than the limit in any window, on either backend."""

from __future__ import annotations

import asyncio
import time

from app.providers.ratelimit import LocalRateLimiter, PostgresRateLimiter, make_rate_limiter


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


async def test_a_local_limiter_waits_for_the_oldest_grant_to_leave_the_window() -> None:
    limiter = LocalRateLimiter("t", 3, window=0.4, margin=0.0)

    started = time.monotonic()
    waits = [await limiter.acquire() for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0] or max(waits[:3]) < 0.01
    assert time.monotonic() - started >= 0.39
    assert limiter.waits == 1 and limiter.waited_seconds >= 0.3


async def test_a_hold_after_a_429_makes_everyone_wait() -> None:
    limiter = LocalRateLimiter("t", 100, window=10, margin=0)
    await limiter.hold(0.3)

    waited = await limiter.acquire()

    assert waited >= 0.25


async def test_limiters_sharing_the_database_never_exceed_the_limit(sessions, db_url) -> None:
    postgres = db_url.startswith("postgresql")
    # Two limiters stand for two worker processes; SQLite runs one worker, so one limiter.
    limiters = [
        make_rate_limiter(sessions, "shared", 4, window=0.6, margin=0.1)
        for _ in range(2 if postgres else 1)
    ]
    assert all(
        isinstance(x, PostgresRateLimiter if postgres else LocalRateLimiter) for x in limiters
    )
    granted: list[float] = []

    async def take(limiter) -> None:  # type: ignore[no-untyped-def]
        await limiter.acquire()
        granted.append(time.monotonic())

    await asyncio.gather(*(take(limiters[n % len(limiters)]) for n in range(10)))

    assert len(granted) == 10
    assert most_in_any_window(granted, 0.6) <= 4
    assert sum(x.waits for x in limiters) >= 5


async def test_a_settled_grant_is_spaced_from_its_answer_on_either_backend(sessions) -> None:
    limiter = make_rate_limiter(sessions, "settled", 1, window=0.3, margin=0)
    first = await limiter.reserve()
    sent = time.monotonic()
    await asyncio.sleep(0.2)  # a slow answer
    await limiter.settle(first)

    await limiter.acquire()

    assert time.monotonic() - sent >= 0.48
