"""Contacts we cannot store as they are never stop a pull: HubSpot's long texts fit, values past
a bounded column are skipped with the field named, and a pull's error never carries a statement
or a contact's data (issue 12: "One bad contact stops every pull")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app.pull.merge import Strategy
from app.pull.models import Lead, PullCursor, PullRun
from app.pull.service import PullFailed, pull

LONG_PHONE = "+44 20 7946 0000 ext. 1234 (reception, ask for the lettings desk) okay"
LONG_COMPANY = "Harbour View Holiday Lettings " * 14  # 420 characters


async def test_a_pull_over_300_contacts_with_odd_ones_answers_200_and_pulls_the_rest(
    pulling, sessions
) -> None:
    _, ops, hubspot = pulling
    contacts: list[dict[str, str]] = [
        {"email": f"guest{n}@example.com", "firstname": f"Guest{n}"} for n in range(300)
    ]
    contacts[100]["phone"] = LONG_PHONE  # 70 characters: `phone_raw` was VARCHAR(64)
    contacts[200]["company"] = LONG_COMPANY  # 420 characters: `company` was VARCHAR(255)
    contacts[250]["email"] = "x" * 330 + "@example.com"  # longer than any address can be
    contacts[260]["lastname"] = "Nul\x00Byte"  # JSON allows it; PostgreSQL's text refuses it
    assert len(LONG_PHONE) == 70
    ids = hubspot.seed_contacts(contacts)

    answer = await ops.post("/api/crm/pull", json={"strategy": "overwrite"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["fetched"] == 300
    assert (body["created"], body["skipped"]) == (299, 1)
    assert body["skipReasons"] == {"email longer than 320 characters": 1}
    assert body["skips"] == [{"crmId": ids[250], "reason": "email longer than 320 characters"}]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 299
        phone = await session.scalar(select(Lead.phone_raw).where(Lead.crm_id == ids[100]))
        company = await session.scalar(select(Lead.company).where(Lead.crm_id == ids[200]))
        last = await session.scalar(select(Lead.last_name).where(Lead.crm_id == ids[260]))
        assert (phone, company, last) == (LONG_PHONE, LONG_COMPANY.strip(), "NulByte")
        assert (await session.get(PullCursor, "hubspot")) is not None
        run = await session.scalar(select(PullRun).order_by(PullRun.id.desc()).limit(1))
        assert (run.status, run.skipped, run.error) == ("done", 1, None)

    again = await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    assert again.status_code == 200  # and every later pull too


class OddValues:
    """A page as HubSpot's JSON can carry it: a lone surrogate (an escaped `\\ud800`) and a
    last-activity time in epoch milliseconds past any datetime."""

    provider_name = "hubspot"
    requests = 0

    async def changed_since(self, since: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        self.requests += 1
        yield [
            {"id": "1", "properties": {"email": "lone@example.com", "firstname": "Lone\ud800"}},
            {
                "id": "2",
                "properties": {"email": "late@example.com", "notes_last_updated": "9" * 30},
            },
        ]

    async def read(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return []


async def test_values_no_store_can_hold_are_made_storable(settings, sessions) -> None:
    outcome = await pull(
        sessions, OddValues(), settings, strategy=Strategy.overwrite, trigger="api"
    )

    assert (outcome.result.created, outcome.result.skipped) == (2, 0)
    async with sessions() as session:
        rows = (
            await session.execute(select(Lead.crm_id, Lead.first_name, Lead.crm_last_activity_at))
        ).all()
    assert sorted(rows) == [("1", "Lone?", None), ("2", None, None)]


class Broken:
    """A source that fails the way a bug would, with a contact's data in the message."""

    provider_name = "hubspot"
    requests = 0

    async def changed_since(self, since: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        self.requests += 1
        yield [{"id": "1", "properties": {"email": "kept@example.com"}}]
        raise ValueError("INSERT INTO leads ... ('ann.private@example.com', '+447700900123')")

    async def read(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return []


async def test_a_pull_stopped_by_a_fault_keeps_its_pages_and_says_only_the_kind(
    settings, sessions
) -> None:
    with pytest.raises(PullFailed) as raised:
        await pull(sessions, Broken(), settings, strategy=Strategy.overwrite, trigger="api")

    assert raised.value.status_code == 502
    async with sessions() as session:
        run = await session.scalar(select(PullRun))
        kept = await session.scalar(select(Lead.email))
    assert run.status == "failed" and run.created == 1 and kept == "kept@example.com"
    for said in (run.error, str(raised.value)):
        assert "ValueError" in said
        assert "ann.private" not in said and "INSERT" not in said and "+44" not in said
