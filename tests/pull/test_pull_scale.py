"""Acceptance 1: 25,000 contacts, past HubSpot's 10,000-result search cap; then 50 edits, and the
next pull fetches those 50 and little else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.pull.models import Lead, PullCursor

CONTACTS = 25_000
SPREAD = timedelta(days=30)  # the seeded contacts were last modified over the past month


@pytest.mark.slow
async def test_first_pull_brings_every_contact_past_the_cap_then_only_the_edits(
    pulling, sessions
) -> None:
    _, ops, hubspot = pulling
    step = SPREAD / CONTACTS
    start = datetime.now(UTC) - SPREAD - timedelta(hours=1)
    ids = hubspot.seed_contacts(
        [
            {
                "email": f"guest{n}@example.com",
                "firstname": f"Guest{n}",
                "lastname": "Pulled",
                "phone": f"+4420{n:08d}",
            }
            for n in range(CONTACTS)
        ],
        start=start,
        step=step,
    )

    first = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()

    assert first["created"] == CONTACTS
    assert first["fetched"] == CONTACTS  # nothing twice, across the re-anchored searches
    assert first["skipped"] == 0 and first["conflicts"] == []
    # 125 pages of 200, and more than one search: paging alone stops at 10,000.
    assert hubspot.searches == first["requests"] >= CONTACTS // 200
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == CONTACTS
        cursor = await session.get(PullCursor, "hubspot")
        newest = start + (CONTACTS - 1) * step
        assert abs((cursor.modified_at - newest).total_seconds()) < 0.01

    edited = ids[:: CONTACTS // 50][:50]
    for n, contact_id in enumerate(edited):
        hubspot.edit_contact(contact_id, {"company": f"Edited Ltd {n}"})
    searches_before = hubspot.searches

    second = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()

    # The 50 edits, plus the few contacts inside the 5-minute overlap before the cursor
    # (one every ~104 s here), and no more.
    assert second["updated"] == 50
    assert 50 <= second["fetched"] <= 55
    assert second["created"] == 0
    assert second["skipped"] == second["fetched"] - 50
    assert set(second["skipReasons"]) <= {"unchanged"}
    assert hubspot.searches - searches_before == second["requests"] == 1
    async with sessions() as session:
        companies = set(
            await session.scalars(select(Lead.company).where(Lead.company.is_not(None)))
        )
        assert companies == {f"Edited Ltd {n}" for n in range(50)}
        assert await session.scalar(select(func.count()).select_from(Lead)) == CONTACTS
