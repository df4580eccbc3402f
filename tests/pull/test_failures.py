"""Pulls that HubSpot cuts short: the cursor stays at the last committed page, the run says why,
and webhook events whose contacts could not be read are merged on the scheduler's next tick."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.db import utcnow
from app.fakes.common import FaultPlan
from app.providers.base import FailureKind, ProviderError
from app.pull.merge import Strategy
from app.pull.models import Lead, PullCursor, PullRun
from app.pull.service import PullFailed, pull
from app.webhooks.models import EventStatus, WebhookEvent
from tests.eventually import eventually
from tests.pull.conftest import signed
from tests.pull.test_webhook import URL, _events

START = datetime(2026, 1, 1, tzinfo=UTC)


def _page(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(n),
            "properties": {
                "email": f"c{n}@example.com",
                "lastmodifieddate": (START + timedelta(minutes=n)).isoformat(),
            },
        }
        for n in range(first, first + count)
    ]


class CutShort:
    """A source whose second page never comes: HubSpot answered 503."""

    provider_name = "hubspot"
    requests = 0

    async def changed_since(self, since: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        self.requests += 1
        yield _page(1, 3)
        self.requests += 1
        raise ProviderError(FailureKind.transient, "HubSpot 503: unavailable", http_status=503)

    async def read(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return []


async def test_the_cursor_stays_at_the_last_committed_page(settings, sessions) -> None:
    with pytest.raises(PullFailed, match="503"):
        await pull(sessions, CutShort(), settings, strategy=Strategy.overwrite, trigger="api")

    async with sessions() as session:
        cursor = await session.get(PullCursor, "hubspot")
        leads = list(await session.scalars(select(Lead)))
        [run] = list(await session.scalars(select(PullRun)))
    assert cursor.modified_at == START + timedelta(minutes=3)
    assert len(leads) == 3
    assert (run.status, run.created, run.requests) == ("failed", 3, 2)
    assert "503" in run.error


async def test_webhook_contacts_unreadable_now_are_merged_once_hubspot_answers(
    pulling, sessions
) -> None:
    app, _, hubspot = pulling
    [contact] = hubspot.seed_contacts([{"email": "later@example.com"}])
    hubspot.state.faults = FaultPlan(mode="error", when="before", status=503, count=10)
    body = json.dumps(_events(contact)).encode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        answer = await client.post(
            URL, content=body, headers=signed(body, URL, str(int(time.time() * 1000)))
        )
    assert answer.status_code == 200  # HubSpot is told: received

    async def left_for_later() -> None:
        async with sessions() as session:
            [event] = list(await session.scalars(select(WebhookEvent)))
            assert event.status == EventStatus.received and "503" in (event.reason or "")
            assert event.run_after > utcnow()  # with backoff, not at once
            assert list(await session.scalars(select(Lead))) == []

    await eventually(left_for_later)
    hubspot.state.faults = FaultPlan()
    async with sessions() as session, session.begin():  # its backoff is over
        await session.execute(update(WebhookEvent).values(run_after=utcnow()))
    app.state.services.wake_inbox()

    async def merged() -> None:
        async with sessions() as session:
            [event] = list(await session.scalars(select(WebhookEvent)))
            emails = [lead.email for lead in await session.scalars(select(Lead))]
        assert event.status == EventStatus.processed
        assert emails == ["later@example.com"]

    await eventually(merged)
