"""Reading the CRM tables as they are, for tests that compare before and after."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, select

from app.providers.internal import models

CRM_TABLES: list[Table] = [
    cast(Table, m.__table__)
    for m in (
        models.CrmContact,
        models.CrmProperty,
        models.CrmPropertyLink,
        models.CrmEnquiry,
        models.CrmBooking,
        models.CrmMembership,
        models.CrmNote,
        models.CrmInteraction,
        models.CrmActivity,
    )
]


async def crm_snapshot(sessions: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every CRM table, every column (update stamps included)."""
    async with sessions() as session:
        return {
            table.name: [
                dict(row._mapping)
                for row in await session.execute(select(table).order_by(table.c.id))
            ]
            for table in CRM_TABLES
        }


async def table_counts(sessions: Any) -> dict[str, int]:
    async with sessions() as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in CRM_TABLES
        }
