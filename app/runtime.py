"""What a running process holds: the engine, sessions and providers made at start-up, and the
nudges that wake its background loops. Below every domain package, so they may all take it."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.providers.base import Provider
from app.settings import Settings

log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


class Notifier:
    """Wakes in-process waiters (a sync request waiting for its delivery, a bulk run waiting
    for its jobs) after each commit of delivery outcomes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Until the next notify() or `seconds`, whichever comes first."""
        event = self._event
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


@dataclass
class Services:
    """The process's shared parts. `wake_delivery` and `wake_inbox` are set by whoever runs the
    delivery worker and the inbox processor in this process (no-ops when they run elsewhere)."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    providers: dict[str, Provider]
    notifier: Notifier = field(default_factory=Notifier)
    wake_delivery: Callable[[], None] = _nothing
    wake_inbox: Callable[[], None] = _nothing
    # The background loops running in this process, by role: "worker", "inbox", "schedule".
    loops: dict[str, Poller] = field(default_factory=dict)

    def kick(self) -> None:
        """New jobs are queued: have an in-process worker look now."""
        self.wake_delivery()


class Poller(ABC):
    """The shape of every background loop (delivery worker, webhook inbox, pull schedule): do a
    round; if it found work, go again at once; else sleep `poll_interval` or until woken. A
    round that raises (the database restarting, a bug) is logged and retried, never fatal;
    the same failure is logged once a minute, not once a round."""

    poll_interval: float = 0.5
    label: str = "loop"

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._quiet = LogThrottle(60.0)

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    @abstractmethod
    async def run_once(self) -> int:
        """One round; returns how many things it handled (0: idle)."""

    async def pending(self) -> int:
        """How much work is left (for `drain`): due or not, anything not settled."""
        return 0

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        """Until `stop` is set; with `drain`, return once a round finds nothing and nothing is
        pending."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception as exc:  # the loop must outlive a bad round
                self._quiet.exception(log, f"{self.label} round failed; retrying", exc)
                handled = 0
            if handled:
                continue
            if drain and not await self._pending_or_unknown():
                return
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waits, timeout=self.poll_interval, return_when=FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()

    async def _pending_or_unknown(self) -> int:
        try:
            return await self.pending()
        except Exception as exc:
            self._quiet.exception(log, f"{self.label}: cannot count pending work", exc)
            return 1


class LogThrottle:
    """One log line per kind of failure per `interval` seconds: an outage of the database
    gives a line a minute saying so (and how many were folded in), not a traceback a round."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def exception(self, logger: logging.Logger, message: str, exc: BaseException) -> None:
        key = f"{message}:{type(exc).__name__}"
        now = time.monotonic()
        last, folded = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, folded + 1)
            return
        self._last[key] = (now, 0)
        more = f" ({folded} more since the last line)" if folded else ""
        first_time = last == float("-inf")
        reason = str(exc).splitlines()[0][:300] if str(exc) else ""
        logger.error(
            "%s: %s%s%s",
            message,
            type(exc).__name__,
            f": {reason}" if reason else "",
            more,
            exc_info=exc if first_time and not is_outage(exc) else None,
        )


def is_outage(exc: BaseException) -> bool:
    """The database (or the network to it) is away: no traceback would say more, and the API
    answers 503 (app.main)."""
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(names & _OUTAGE_ERRORS)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_OUTAGE_ERRORS = frozenset(
    {
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "InterfaceError",
        "OperationalError",
        "AdminShutdownError",
        "TooManyConnectionsError",
        "TimeoutError",
    }
)
