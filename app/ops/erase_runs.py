"""Running erasures (app/ops/erase.py's steps 2 and 3) to the end: under a lease like a bulk run,
so a run whose process died is resumed by any API process's sweep, or `crm-sync erase --resume`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction, utcnow
from app.ops.bulk import runner_name
from app.ops.erase import (
    EraseRequest,
    all_ids,
    create_erasure,
    get_erasure,
    provider_counts,
    scrub_stores,
)
from app.ops.models import ACTIVE_ERASURE, Erasure, ErasureStatus
from app.runtime import Notifier
from app.settings import Settings

log = logging.getLogger("app.ops.erase")


class LeaseLost(Exception):
    """Another process took the erasure over."""


class ErasureRunner:
    """Runs erasures to the end (steps 2 and 3), under a lease like a bulk runner."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        notifier: Notifier | None = None,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.name = name or runner_name()

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.bulk.lease_seconds)

    async def run(self, erasure_id: str) -> bool:
        """Run (or resume) one erasure; False if another runner holds it."""
        if not await self._claim(erasure_id):
            return False
        try:
            await self._settle(erasure_id)
            await self._scrub(erasure_id)
        except LeaseLost:
            log.warning("erasure %s: lease lost to another runner", erasure_id)
        except asyncio.CancelledError:
            with suppress(Exception):
                await asyncio.shield(self._save_plain(erasure_id, runner=None, lease_until=None))
            raise
        except Exception as exc:
            # Left where it stood, with the reason: the sweep resumes it (its jobs are in the
            # outbox; the scrub is one transaction), however often it takes.
            log.exception("erasure %s broke; it will be resumed", erasure_id)
            await self._save_plain(
                erasure_id, error=f"{type(exc).__name__}: {exc}", runner=None, lease_until=None
            )
        return True

    async def _claim(self, erasure_id: str) -> bool:
        now = utcnow()
        async with transaction(self.sessions) as session:
            claimed = await session.execute(
                update(Erasure)
                .where(
                    Erasure.id == erasure_id,
                    Erasure.status.in_([s.value for s in ACTIVE_ERASURE]),
                    or_(
                        Erasure.runner.is_(None),
                        Erasure.runner == self.name,
                        Erasure.lease_until.is_(None),
                        Erasure.lease_until < now,
                    ),
                )
                .values(
                    runner=self.name,
                    lease_until=self._lease(now),
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def _save(self, session: AsyncSession, erasure_id: str, **values: Any) -> None:
        now = utcnow()
        saved = await session.execute(
            update(Erasure)
            .where(Erasure.id == erasure_id, Erasure.runner == self.name)
            .values(**{"lease_until": self._lease(now), **values, "updated_at": now})
            .execution_options(synchronize_session=False)
        )
        if not saved.rowcount:  # type: ignore[attr-defined]
            raise LeaseLost(erasure_id)

    async def _save_plain(self, erasure_id: str, **values: Any) -> None:
        async with transaction(self.sessions) as session:
            await self._save(session, erasure_id, **values)

    async def _settle(self, erasure_id: str) -> None:
        """Until no erase job of the run's records is queued, running or waiting."""
        renew_every = self.settings.bulk.lease_seconds / 4
        renewed = asyncio.get_running_loop().time()
        while True:
            async with self.sessions() as session:
                erasure = await get_erasure(session, erasure_id)
                if erasure.status != ErasureStatus.deleting.value:
                    return
                providers = await provider_counts(session, all_ids(erasure))
            if not any(p["pending"] for p in providers.values()):
                async with transaction(self.sessions) as session:
                    await self._save(
                        session,
                        erasure_id,
                        status=ErasureStatus.scrubbing.value,
                        providers=providers,
                    )
                return
            if asyncio.get_running_loop().time() - renewed > renew_every:
                await self._save_plain(erasure_id, providers=providers)
                renewed = asyncio.get_running_loop().time()
            await self.notifier.wait(self.settings.bulk.poll_interval)

    async def _scrub(self, erasure_id: str) -> None:
        """Step 3, in one transaction: all of it, or (if the process dies) none of it."""
        async with transaction(self.sessions) as session:
            erasure = await get_erasure(session, erasure_id)
            if erasure.status == ErasureStatus.completed.value:
                return
            counts = await scrub_stores(session, erasure, self.settings)
            await self._save(
                session,
                erasure_id,
                status=ErasureStatus.completed.value,
                error=None,
                subject=None,
                counts=counts,
                finished_at=utcnow(),
                runner=None,
                lease_until=None,
            )
        log.info("erasure %s completed: %s", erasure_id, counts)


class Erasures:
    """The erasures of one API process: started on request, and any whose runner died picked
    up by a periodic sweep (as bulk runs are)."""

    def __init__(self, runner: ErasureRunner, kick: Callable[[], None]) -> None:
        self.runner = runner
        self.kick = kick
        self.tasks: dict[str, asyncio.Task[bool]] = {}

    async def start(
        self, settings: Settings, request: EraseRequest, *, requested_by: str | None = None
    ) -> Erasure:
        async with transaction(self.runner.sessions) as session:
            erasure = await create_erasure(
                session, settings, request, runner=self.runner.name, requested_by=requested_by
            )
        self.kick()
        self._spawn(erasure.id)
        return erasure

    def _spawn(self, erasure_id: str) -> None:
        if erasure_id in self.tasks:
            return
        task = asyncio.create_task(self.runner.run(erasure_id), name=f"erasure-{erasure_id}")
        self.tasks[erasure_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(erasure_id, None))

    async def wait(self, erasure_id: str, seconds: float) -> None:
        """Until the erasure is over or `seconds` pass, whichever process runs it."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            async with self.runner.sessions() as session:
                status = await session.scalar(
                    select(Erasure.status).where(Erasure.id == erasure_id)
                )
            if status not in [s.value for s in ACTIVE_ERASURE]:
                return
            await self.runner.notifier.wait(min(self.runner.settings.bulk.poll_interval, 0.25))

    async def sweep(self) -> list[str]:
        """Resume erasures nobody holds (their process died)."""
        now = utcnow()
        async with self.runner.sessions() as session:
            orphans = list(
                await session.scalars(
                    select(Erasure.id).where(
                        Erasure.status.in_([s.value for s in ACTIVE_ERASURE]),
                        or_(Erasure.lease_until.is_(None), Erasure.lease_until < now),
                    )
                )
            )
        for erasure_id in orphans:
            if erasure_id not in self.tasks:
                log.warning("erasure %s: its runner is gone; resuming it here", erasure_id)
                self._spawn(erasure_id)
        return orphans

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the database may be restarting; try again next time
                log.exception("erasure sweep failed")
            await asyncio.sleep(self.runner.settings.bulk.lease_seconds / 2)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Erasures]:
        sweeper = asyncio.create_task(self._sweep_forever(), name="erasure-sweeper")
        try:
            yield self
        finally:
            tasks = [sweeper, *self.tasks.values()]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task
