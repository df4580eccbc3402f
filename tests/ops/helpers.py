"""Seeding records the way the website left them: stored, never delivered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.db import transaction
from app.models import SyncJob
from app.records import Kind
from app.sync.accept import accept


async def seed(sessions: Any, kind: Kind, records: list[dict[str, Any]]) -> None:
    """Store snapshots with no job queued, as if they predate the service."""
    async with transaction(sessions) as session:
        for fields in records:
            await accept(session, kind, [(0, fields)], [], "GB")  # no provider: no job


def owners(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [
        {"userId": f"u{i}", "name": f"Owner {i}", "email": f"owner{i}@example.com"}
        for i in range(start, start + n)
    ]


def properties(n: int, owner: str = "u1") -> list[dict[str, Any]]:
    return [
        {"propertyId": f"p{i}", "ownerId": owner, "title": f"House {i}"} for i in range(1, n + 1)
    ]


async def jobs_by_status(services: Any) -> dict[str, int]:
    async with services.sessions() as session:
        rows = await session.execute(select(SyncJob.status, func.count()).group_by(SyncJob.status))
        return {status: n for status, n in rows}
