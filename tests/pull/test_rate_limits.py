"""A pull under HubSpot's search budget (five searches a second, per account): the fake refuses
a sixth with HubSpot's SECONDLY 429, our client keeps under it, and a 429 met while paging is
waited out, never a failed run (issue 12: "Search has its own, lower limit")."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from app.fakes.common import FaultPlan
from app.pull.models import Lead, PullRun
from tests.e2e.conftest import HUBSPOT_TOKEN
from tests.pull.test_fake_pull import AUTH, _search

SEARCH_PATH = "/crm/v3/objects/contacts/search"


async def test_the_fake_refuses_a_sixth_search_in_a_second_as_hubspot_does(fake) -> None:
    hubspot, url = fake
    hubspot.seed_contacts([{"email": "a@example.com"}])
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        answers = await asyncio.gather(
            *(client.post(SEARCH_PATH, json=_search()) for _ in range(7))
        )

    refused = [a for a in answers if a.status_code == 429]
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 2
    body = refused[0].json()
    assert (body["policyName"], body["errorType"], body["status"]) == (
        "SECONDLY",
        "RATE_LIMIT",
        "error",
    )
    assert float(refused[0].headers["Retry-After"]) > 0
    assert HUBSPOT_TOKEN not in refused[0].text


async def test_a_429_met_while_paging_is_waited_out_and_the_pull_completes(
    pulling, sessions
) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts([{"email": f"p{n}@example.com"} for n in range(1_000)])  # 5 pages
    # HubSpot refuses the third page's search once.
    hubspot.state.faults = FaultPlan(
        mode="secondly_limit", when="before", skip=2, count=1, path_prefix=SEARCH_PATH
    )

    answer = await ops.post("/api/crm/pull", json={"strategy": "overwrite"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["fetched"], body["complete"]) == (1_000, 1_000, True)
    assert body["rateLimited"] == 1 and hubspot.rate_limited_by == {"SECONDLY": 1}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1_000
        run = await session.scalar(select(PullRun))
        assert (run.status, run.error) == ("done", None)


async def test_paging_at_the_search_budget_meets_no_429(pulling) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts([{"email": f"q{n}@example.com"} for n in range(3_000)])  # 15 pages

    body = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()

    assert body["created"] == 3_000 and body["rateLimited"] == 0
    assert hubspot.rate_limited == 0 and hubspot.search_counter.max_in_window <= 5


async def test_a_daily_429_pauses_the_pull_with_its_pages_kept(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts([{"email": f"d{n}@example.com"} for n in range(600)])  # 3 pages
    # The daily budget runs out at the third page's search.
    hubspot.state.faults = FaultPlan(
        mode="daily_limit", when="before", skip=2, path_prefix=SEARCH_PATH
    )

    answer = await ops.post("/api/crm/pull", json={"strategy": "overwrite"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["complete"] is False and "DAILY" in body["stoppedBy"]
    assert body["created"] == 400  # the two pages before it are kept
    async with sessions() as session:
        run = await session.scalar(select(PullRun))
        assert run.status == "paused" and "DAILY" in run.error
