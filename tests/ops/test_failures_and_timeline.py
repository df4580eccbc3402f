"""What the dashboard's Failures and Record pages are made of: picked jobs requeued (and only
those), and one record's story in time order with its attempts' payloads."""

from __future__ import annotations

import pytest

from app.db import transaction
from app.errors import NotFound
from app.ops.failures import find_failures, retry_failures
from app.ops.timeline import record_detail
from app.providers.mock import Faults
from app.records import Kind
from app.settings import Settings
from tests.conftest import make_settings
from tests.routers.test_logs import make_failures, until_status


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, delivery={"retry_horizon": 0.001})


async def test_only_the_picked_jobs_are_requeued(client, mock, services) -> None:
    await make_failures(client, mock)  # u1, u2 dead; u3 failed
    async with services.sessions() as session:
        found = await find_failures(session)
    picked = [j.jobId for j in found.jobs if j.entityId in ("u1", "u3")]

    mock.faults = Faults()
    async with transaction(services.sessions) as session:
        retried = await retry_failures(session, job_ids=picked)
    services.kick()
    assert retried.requeued == 2
    assert sorted((j.entityId, j.status) for j in retried.jobs) == [
        ("u1", "queued"),
        ("u3", "queued"),
    ]
    await until_status(client, "u1", "synced")
    await until_status(client, "u3", "synced")
    async with services.sessions() as session:
        left = await find_failures(session)
    assert [(j.entityId, j.status) for j in left.jobs] == [("u2", "dead")]


async def test_a_record_tells_its_story_oldest_first(client, mock, services) -> None:
    mock.faults = Faults(mode="reject", count=1)
    body = {"userId": "u1", "name": "Ann", "email": "ANN@example.com", "phone": "07700 900123"}
    assert (await client.post("/api/crm/sync/owner", json=body)).status_code == 502
    resent = await client.post("/api/crm/sync/owner", json={"userId": "u1", "name": "Ann B"})
    assert resent.status_code == 200

    detail = await record_detail(services, Kind.owner, "u1")
    assert detail.snapshot == {
        "userId": "u1",
        "name": "Ann B",
        "email": "ann@example.com",
        "phone": "+447700900123",
    }
    assert detail.status.syncStatus == "synced"
    assert [(j.provider, j.status) for j in detail.jobs] == [("mock", "done")]
    events = [(e.event, e.summary.split(":")[0]) for e in detail.timeline]
    assert events[0] == ("accepted", "first accepted")
    attempts = [e for e in detail.timeline if e.event == "attempt"]
    assert [a.log.status for a in attempts if a.log] == ["failed", "success"]
    assert attempts[0].log and attempts[0].log.request["properties"]["email"] == ("ann@example.com")
    assert attempts[0].log.response == {
        "error": "invalid record",
        "message": "rejected by request",
    }
    assert [e.event for e in detail.timeline].index("changed") < len(detail.timeline) - 1

    with pytest.raises(NotFound):
        await record_detail(services, Kind.owner, "nobody")
