"""The figures behind the dashboard, as scripts read them: GET /api/crm/sync/activity and
GET /api/crm/sync/failures, and POST /api/crm/sync/retry of one failure group (by reason)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.db import utcnow
from app.ops.activity import delivery_activity
from app.providers.mock import Faults
from app.settings import Settings
from tests.conftest import make_settings
from tests.ops.helpers import owners
from tests.routers.test_logs import make_failures, until_status


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, delivery={"retry_horizon": 0.001})


async def test_activity_counts_outcomes_per_provider_and_deliveries_per_minute(
    client, ops, mock, services
) -> None:
    for record in owners(3, start=10):
        assert (await client.post("/api/crm/sync/owner", json=record)).status_code == 200
    await make_failures(client, mock)  # u1, u2 dead after 2 attempts each; u3 rejected

    answer = await ops.get("/api/crm/sync/activity")
    assert answer.status_code == 200
    body = answer.json()
    mock_figures = body["providers"]["mock"]
    assert body["minutes"] == 60 and len(mock_figures["deliveriesPerMinute"]) == 60
    # 3 synced; 2 + 2 transient failures and 1 rejection; u1 and u2 died past the horizon.
    assert mock_figures["synced24h"] == 3
    assert mock_figures["failed24h"] == 5
    assert mock_figures["dead24h"] == 2
    assert sum(mock_figures["deliveriesPerMinute"]) == 8
    assert mock_figures["oldestDueAgeSeconds"] == 0  # nothing is queued
    assert mock_figures["rateLimitWaitSeconds"] >= 0

    # An hour from now the per-minute series is empty; the day's counts still hold.
    async with services.sessions() as session:
        later = await delivery_activity(session, ["mock"], now=utcnow() + timedelta(hours=1))
    assert sum(later.providers["mock"].deliveriesPerMinute) == 0
    assert later.providers["mock"].synced24h == 3


async def test_failures_are_grouped_by_provider_and_reason_and_a_group_is_retried(
    client, ops, mock
) -> None:
    await make_failures(client, mock)

    found = (await ops.get("/api/crm/sync/failures")).json()
    assert found["total"] == 3
    groups = {(g["provider"], g["status"]): g for g in found["groups"]}
    assert sorted((key, g["count"]) for key, g in groups.items()) == [
        (("mock", "dead"), 2),
        (("mock", "failed"), 1),
    ]
    dead_reason = groups[("mock", "dead")]["reason"]
    assert dead_reason.startswith("mock: 503 service unavailable (gave up: failing past the")
    assert groups[("mock", "failed")]["reason"] == "mock: 400 invalid record: rejected by request"
    assert {(j["entityId"], j["status"]) for j in found["jobs"]} == {
        ("u1", "dead"),
        ("u2", "dead"),
        ("u3", "failed"),
    }

    mock.faults = Faults()
    retried = await ops.post(
        "/api/crm/sync/retry",
        json={"status": "dead", "provider": "mock", "reason": dead_reason},
    )
    assert retried.json()["requeued"] == 2
    for user_id in ("u1", "u2"):
        await until_status(client, user_id, "synced")
    left = (await ops.get("/api/crm/sync/failures")).json()
    assert [(g["status"], g["count"]) for g in left["groups"]] == [("failed", 1)]


async def test_the_newest_bulk_runs_and_pulls_are_listed(client, ops) -> None:
    for record in owners(2):
        await client.post("/api/crm/sync/owner", json=record)
    first = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "owners"})
    second = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "all"})
    runs = (await ops.get("/api/crm/sync/bulk", params={"limit": 5})).json()["runs"]
    assert [r["bulkId"] for r in runs] == [second.json()["bulkId"], first.json()["bulkId"]]
    assert runs[1]["results"]["owners"]["skipped"] == 2  # as GET .../bulk/{bulkId} says
    assert (await ops.get("/api/crm/pull/runs")).json() == []  # no pull yet
    assert (await client.get("/api/crm/sync/activity")).status_code == 403  # ops only
