"""One way for a test to wait for something a background loop does: ask until it holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], *, seconds: float = 10.0, every: float = 0.02
) -> T:
    """Await `check()` until it returns without raising AssertionError, and return what it
    returned; after `seconds`, the last AssertionError is raised (the test fails with it)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(every)
