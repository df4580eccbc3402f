"""The eleven story events in any order, any of them delivered up to four times, processed
after any of the deliveries: the end is the story's end in order, field for field (hypothesis).
Also with Stripe's clock as coarse as it gets: each change's events stamped with one second, so
`created` cannot order them and only what the events say can.

Each example starts from empty tables with the owner synced, like the story. The loops are
driven by the test (none runs in the background), so an example is exactly the order drawn."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select

from app.db import Base
from app.main import background_loops, create_app
from app.records import Kind
from app.settings import Settings
from app.webhooks.models import EventStatus, WebhookEvent
from tests.conftest import SYNC_KEY, make_settings
from tests.webhooks.conftest import EVENTS, SECRET, settle, sign, snapshots
from tests.webhooks.test_stripe_story import (
    FINAL_ACTIVITIES,
    FINAL_MEMBERSHIP,
    FINAL_NOTES,
    OWNER,
)

# The issue's order (fixture numbers), every delivery processed before the next arrives.
ISSUE_ORDER = [2, 3, 6, 6, 11, 7, 9, 2, 4, 4, 9, 10, 11, 1, 10, 3, 5, 1, 5, 7, 8, 8]
Deliveries = list[tuple[int, bool]]  # (fixture index 0-10, process everything received after)

# The story's changes (fixture indexes): checkout; a failed renewal; its retry; a booking's
# two payments; the cancellation.
CHANGES = [(0, 1, 2), (3, 4, 5, 6), (7, 8), (9, 10)]


def one_second_per_change() -> list[bytes]:
    """The fixtures with every event of a change stamped with the change's first second."""
    bodies = [json.loads(body) for _, body in EVENTS]
    for change in CHANGES:
        for index in change:
            bodies[index]["created"] = bodies[change[0]]["created"]
    return [json.dumps(body).encode() for body in bodies]


CLOCKS = {"as sent": [body for _, body in EVENTS], "one second per change": one_second_per_change()}


@st.composite
def deliveries(draw: st.DrawFn) -> Deliveries:
    """Every fixture at least once and at most four times, in any order; the processor runs
    after any of them (and always at the end)."""
    copies = draw(st.lists(st.integers(0, 3), min_size=len(EVENTS), max_size=len(EVENTS)))
    multiset = [index for index, extra in enumerate(copies) for _ in range(1 + extra)]
    order = draw(st.permutations(multiset))
    process = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    return list(zip(order, process, strict=True))


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(
        db_url,
        stripe_webhook_secret=SECRET,
        worker_in_process=False,  # the test drives the loops
        delivery={"max_attempts": 200},
    )


@pytest.fixture
async def story(settings: Settings) -> AsyncIterator[Story]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {SYNC_KEY}"},
        ) as client,
    ):
        yield Story(client, app.state.services)


async def empty_tables(services: Any) -> None:
    """Every row gone, children first (DELETE: on PostgreSQL TRUNCATE takes a second and a
    half here, and an example's rows are few)."""
    async with services.sessions() as session, session.begin():
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())


class Story:
    """The service, and the story told to it in a planned order."""

    def __init__(self, client: httpx.AsyncClient, services: Any) -> None:
        self.client = client
        self.services = services
        self.in_order: dict[str, dict[str, Any]] = {}

    async def tell(self, plan: Deliveries, clock: str = "as sent") -> dict[str, Any]:
        """From nothing: sync the owner, deliver and process as planned; then what we hold,
        what the CRM got, and the inbox."""
        services = self.services
        await empty_tables(services)
        mock = services.providers["mock"]
        mock.store.clear()
        background_loops(services)  # fresh loops, not started: this test drives them
        answer = await self.client.post(
            "/api/crm/sync/owner", json=OWNER, headers={"Prefer": "respond-async"}
        )
        assert answer.status_code == 202, answer.text
        await settle(services)
        for index, process in plan:
            body = CLOCKS[clock][index]
            answer = await self.client.post(
                "/api/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
            )
            assert answer.status_code == 200, answer.text
            if process:
                while await services.loops["inbox"].run_once():
                    pass
        await settle(services)
        async with services.sessions() as session:
            inbox = list(await session.scalars(select(WebhookEvent)))
        return {
            "memberships": await snapshots(services, Kind.membership),
            "owners": await snapshots(services, Kind.owner),
            "notes": await snapshots(services, Kind.note),
            "activities": await snapshots(services, Kind.activity),
            "crm": {f"{kind}/{rid}": data for (kind, rid), data in mock.store.items()},
            "inbox": sorted((e.external_id, e.status) for e in inbox),
        }

    async def told_in_order(self, clock: str = "as sent") -> dict[str, Any]:
        """The story in order, each event once and processed at once (told once per test)."""
        if clock not in self.in_order:
            self.in_order[clock] = await self.tell([(i, True) for i in range(len(EVENTS))], clock)
        return self.in_order[clock]


async def test_the_story_in_order_ends_as_its_readme_says(story: Story) -> None:
    end = await story.told_in_order()
    assert end["memberships"] == {OWNER["userId"]: FINAL_MEMBERSHIP}
    assert end["owners"][OWNER["userId"]]["status"] == "inactive"
    assert set(end["notes"]) == FINAL_NOTES
    assert {k: a["activityType"] for k, a in end["activities"].items()} == FINAL_ACTIVITIES
    assert end["inbox"] == [(name, EventStatus.processed.value) for name, _ in EVENTS]


@examples(
    # Each example is a whole story on a real database (about 1 s on SQLite, 3 s on
    # PostgreSQL here); STRIPE_ORDER_EXAMPLES=500 explores further.
    max_examples=int(os.environ.get("STRIPE_ORDER_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(clock=st.sampled_from(list(CLOCKS)), plan=deliveries())
@example(clock="as sent", plan=[(n - 1, True) for n in ISSUE_ORDER])  # the issue's order
@example(clock="as sent", plan=[(n, True) for n in reversed(range(len(EVENTS)))])  # backwards
@example(  # backwards, and only the events themselves can say which came first
    clock="one second per change", plan=[(n, True) for n in reversed(range(len(EVENTS)))]
)
@example(clock="as sent", plan=[(n, False) for n in reversed(range(len(EVENTS)))] * 2)
async def test_any_order_any_duplicates_end_as_the_story_in_order(
    story: Story, clock: str, plan: Deliveries
) -> None:
    expected = await story.told_in_order(clock)
    end = await story.tell(plan, clock)
    assert end["memberships"] == expected["memberships"]  # every field, failure count too
    assert end["owners"] == expected["owners"]
    assert end["notes"] == expected["notes"]
    assert end["activities"] == expected["activities"]
    assert end["crm"] == expected["crm"]  # what the CRM got: the same, no duplicates
    assert end["inbox"] == expected["inbox"]  # each event stored once, all processed
