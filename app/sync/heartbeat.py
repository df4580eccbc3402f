"""Worker heartbeats: each process that runs the delivery worker keeps a row saying so, beaten
every few seconds, so others can tell whether anyone is delivering (`crm-sync bulk` leaves
delivery to a running worker; `crm-sync workers --here` is a container's health check)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, UTCDateTime, transaction, utcnow
from app.runtime import Poller

log = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
# A worker that missed three beats is taken for gone (stopped, crashed, or cut off from us).
LIVE_SECONDS = 3 * BEAT_SECONDS
# Rows of processes that died without removing theirs are cleared after this long.
FORGET_AFTER = timedelta(hours=1)


class WorkerHeartbeat(Base):
    """One process running the delivery worker: where, since when, last seen."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    role: Mapped[str] = mapped_column(String(16))  # serve (API + worker) or worker
    providers: Mapped[list[str]] = mapped_column(JSONType)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def describe(self) -> str:
        return f"{self.role} pid {self.pid} on {self.host}"


class Heartbeat(Poller):
    """Beats this process's row every `poll_interval` seconds while it runs; removes it on a
    clean stop. A beat that fails (the database away) is retried by the Poller loop."""

    label = "worker heartbeat"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        role: str,
        providers: list[str],
        poll_interval: float = BEAT_SECONDS,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.poll_interval = poll_interval
        self.host = socket.gethostname()
        self.row_id = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.role = role
        self.providers = providers
        self._started = utcnow()
        self._written = False

    async def run_once(self) -> int:
        now = utcnow()
        async with transaction(self.sessions) as session:
            if self._written:
                beat = update(WorkerHeartbeat).where(WorkerHeartbeat.id == self.row_id)
                found = await session.execute(beat.values(beat_at=now))
                self._written = bool(getattr(found, "rowcount", 0))
            if not self._written:  # first beat, or our row was cleared while we were away
                session.add(self._row(now))
                await session.execute(
                    delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER)
                )
                self._written = True
        return 0  # never "found work": the loop sleeps a full interval between beats

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        try:
            await super().run(stop, drain=drain)
        finally:
            try:
                async with transaction(self.sessions) as session:
                    gone = delete(WorkerHeartbeat).where(WorkerHeartbeat.id == self.row_id)
                    await session.execute(gone)
            except Exception as exc:  # the database is away: the row goes stale on its own
                log.warning("worker heartbeat: cannot remove %s: %s", self.row_id, exc)

    def _row(self, now: datetime) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            id=self.row_id,
            host=self.host,
            pid=os.getpid(),
            role=self.role,
            providers=self.providers,
            started_at=self._started,
            beat_at=now,
        )


async def live_workers(session: AsyncSession, *, host: str | None = None) -> list[WorkerHeartbeat]:
    """The processes that beat within the last LIVE_SECONDS (on `host` only, if given), oldest
    first."""
    query = select(WorkerHeartbeat).where(
        WorkerHeartbeat.beat_at >= utcnow() - timedelta(seconds=LIVE_SECONDS)
    )
    if host is not None:
        query = query.where(WorkerHeartbeat.host == host)
    return list((await session.scalars(query.order_by(WorkerHeartbeat.started_at))).all())
