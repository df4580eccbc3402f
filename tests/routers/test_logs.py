"""The sync-log and retry API, as ops use them to find what failed and replay it."""

from __future__ import annotations

from typing import Any

import pytest

from app.ops.logs import encode_cursor
from app.providers.mock import Faults
from app.settings import Settings
from tests.conftest import make_settings
from tests.eventually import eventually
from tests.ops.helpers import owners


@pytest.fixture
def settings(db_url: str) -> Settings:
    """A retry horizon of a millisecond: a record's second failing attempt is past it, so a
    transient fault makes a dead job after exactly two attempts."""
    return make_settings(db_url, delivery={"retry_horizon": 0.001})


async def until_status(client: Any, user_id: str, wanted: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any]:
        status = (await client.get("/api/crm/sync/owner", params={"userId": user_id})).json()
        assert status["syncStatus"] == wanted, f"{user_id} never became {wanted}: {status}"
        return dict(status)

    return await eventually(reached)


async def make_failures(client: Any, mock: Any) -> None:
    """u1, u2 die of 503s (past the retry horizon); u3 is rejected by the CRM."""
    mock.faults = Faults(mode="transient")
    for record in owners(2):
        await client.post("/api/crm/sync/owner", json=record, headers={"Prefer": "respond-async"})
    for user_id in ("u1", "u2"):
        await until_status(client, user_id, "failed")
    mock.faults = Faults(mode="reject")
    rejected = await client.post("/api/crm/sync/owner", json=owners(1, start=3)[0])
    assert rejected.status_code == 502


async def test_failed_and_dead_jobs_are_found_in_the_log_retried_and_then_succeed(
    client, ops, mock
) -> None:
    await make_failures(client, mock)

    failed = (await ops.get("/api/crm/sync/logs", params={"status": "failed"})).json()
    assert failed["success"] is True
    rows = failed["logs"]
    assert sorted(r["entityId"] for r in rows) == ["u1", "u1", "u2", "u2", "u3"]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert rows[0]["entityId"] == "u3"  # newest first
    assert rows[0]["httpStatus"] == 400
    assert "rejected by request" in rows[0]["error"]
    assert rows[0]["request"]["properties"]["email"] == "owner3@example.com"
    assert rows[0]["response"] == {"error": "invalid record", "message": "rejected by request"}
    dead = [r for r in rows if r["entityId"] == "u1"]
    assert "past the retry horizon" in dead[0]["error"]
    assert {r["attempt"] for r in dead} == {1, 2}

    mock.faults = Faults()  # the CRM is healthy again
    retried = await ops.post("/api/crm/sync/retry", json={"status": "dead"})
    assert retried.status_code == 200
    assert retried.json()["requeued"] == 2
    for user_id in ("u1", "u2"):
        await until_status(client, user_id, "synced")
    assert (await until_status(client, "u3", "failed"))["lastError"].endswith("rejected by request")

    again = await ops.post(
        "/api/crm/sync/retry", json={"status": "failed", "entityType": "owner", "provider": "mock"}
    )
    assert again.json()["requeued"] == 1
    await until_status(client, "u3", "synced")
    nothing_left = await ops.post("/api/crm/sync/retry", json={"status": "dead"})
    assert nothing_left.json()["requeued"] == 0

    history = (await ops.get("/api/crm/sync/logs", params={"entityId": "u1"})).json()["logs"]
    assert [r["status"] for r in history] == ["success", "failed", "failed"]


async def test_logs_page_newest_first_with_an_opaque_cursor(client, ops) -> None:
    response = await client.post("/api/crm/sync/owner/batch", json=owners(7))
    assert response.json()["queued"] == 7
    for user_id in ("u1", "u7"):
        await until_status(client, user_id, "synced")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await ops.get("/api/crm/sync/logs", params=params)).json()
        pages += 1
        seen += [r["id"] for r in page["logs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
        assert page["count"] == 3
    assert pages == 3
    assert len(seen) == 7 and seen == sorted(set(seen), reverse=True)

    default = (await ops.get("/api/crm/sync/logs")).json()
    assert default["count"] == 7 and default["nextCursor"] is None


async def test_logs_filters(client, ops, mock) -> None:
    await client.post("/api/crm/sync/owner", json=owners(1)[0])
    await client.post(
        "/api/crm/sync/property", json={"propertyId": "p1", "ownerId": "u1", "title": "Barn"}
    )

    async def ids(**params: Any) -> list[str]:
        answer = await ops.get("/api/crm/sync/logs", params=params)
        assert answer.status_code == 200, answer.text
        return [f"{r['entityType']}/{r['entityId']}" for r in answer.json()["logs"]]

    assert await ids() == ["property/p1", "owner/u1"]
    assert await ids(entityType="property") == ["property/p1"]
    assert await ids(entityType="owner", entityId="u1") == ["owner/u1"]
    assert await ids(entityId="nobody") == []
    assert await ids(provider="mock", status="success") == ["property/p1", "owner/u1"]
    assert await ids(provider="hubspot") == []
    assert await ids(status="failed") == []
    assert await ids(since="1h") == ["property/p1", "owner/u1"]
    assert await ids(since="2999-01-01T00:00:00Z") == []
    assert await ids(since="2000-01-01") == ["property/p1", "owner/u1"]
    job_id = (await ops.get("/api/crm/sync/logs", params={"entityId": "p1"})).json()["logs"][0][
        "jobId"
    ]
    assert await ids(jobId=job_id) == ["property/p1"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-ours"}, "cursor"),
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"entityType": "guest"}, "entityType"),
        ({"since": "yesterday"}, "since"),
        ({"status": "bogus"}, "status"),
        ({"entityId": "a\x00b"}, "entityId"),  # PostgreSQL cannot even compare a NUL
        ({"provider": "\x00"}, "provider"),
        ({"bulkId": "\x00"}, "bulkId"),
        ({"jobId": 2**64}, "jobId"),
        ({"since": "9999-12-31T23:59:59-14:00"}, "since"),
        ({"since": "99999999999d"}, "since"),
        ({"cursor": encode_cursor(2**64)}, "cursor"),  # well formed, beyond any BIGINT id
    ],
)
async def test_bad_log_queries_name_the_field(ops, params, field) -> None:
    response = await ops.get("/api/crm/sync/logs", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"status": "done"}, "status"),
        ({"status": "failed", "provider": "salesforce"}, "provider"),
        ({"status": "failed", "entityType": "guest"}, "entityType"),
        ({"status": "failed", "extra": 1}, "extra"),
        ({"status": "failed", "entityId": "a\x00"}, "entityId"),
    ],
)
async def test_bad_retry_bodies_name_the_field(ops, body, field) -> None:
    response = await ops.post("/api/crm/sync/retry", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_logs_and_retry_need_an_ops_key(client) -> None:
    assert (await client.get("/api/crm/sync/logs")).status_code == 403
    assert (await client.post("/api/crm/sync/retry", json={"status": "dead"})).status_code == 403
