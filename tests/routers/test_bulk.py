"""Batch import and bulk resync, as the website and ops see them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import Record, SyncJob, SyncLog
from app.providers.mock import Faults, MockProvider
from app.providers.registry import FACTORIES
from app.records import Kind
from tests.conftest import make_settings
from tests.eventually import eventually
from tests.ops.helpers import owners, properties, seed

# -- batch --------------------------------------------------------------------------------------


async def test_a_batch_accepts_each_good_record_and_names_each_bad_ones_field(
    client, services
) -> None:
    body = [
        {"userId": "u1", "name": "Ann", "email": "Ann@Example.com", "phone": "07700 900123"},
        {"userId": "u2", "email": "not-an-email"},
        {"userId": "u3", "phone": "call me"},
        "a string",
        {"name": "no id"},
        {"userId": "u4", "name": "Bob"},
        {"userId": "ghost"},  # only the id, never synced: nothing to re-sync
    ]
    response = await client.post("/api/crm/sync/owner/batch", json=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["success"] is False  # some were rejected
    assert (answer["accepted"], answer["rejected"], answer["queued"]) == (2, 5, 2)
    assert [(r["index"], r["id"], r["field"]) for r in answer["rejections"]] == [
        (1, "u2", "email"),
        (2, "u3", "phone"),
        (3, None, "body"),
        (4, None, "userId"),
        (6, "ghost", "userId"),
    ]
    assert "not a phone number" in answer["rejections"][1]["error"]

    async with services.sessions() as session:
        stored = {r.external_id: r.data for r in await session.scalars(select(Record))}
    assert set(stored) == {"u1", "u4"}
    assert stored["u1"]["email"] == "ann@example.com"
    assert stored["u1"]["phone"] == "+447700900123"
    await _settled(client, ["u1", "u4"])


async def test_a_batch_merges_with_stored_snapshots_and_skips_unchanged(client, mock) -> None:
    first = await client.post("/api/crm/sync/owner/batch", json=owners(3))
    assert first.json()["queued"] == 3
    await _settled(client, ["u1", "u2", "u3"])
    calls = mock.calls
    again = await client.post(
        "/api/crm/sync/owner/batch",
        json=[*owners(2), {"userId": "u3", "phone": "+44 7700 900123"}, {"userId": "u1"}],
    )
    body = again.json()
    assert (body["success"], body["accepted"], body["rejected"]) == (True, 4, 0)
    assert body["queued"] == 1  # only u3 changed; u1 and u2 are confirmed as they are
    await _settled(client, ["u3"])
    assert mock.calls == calls + 1
    assert mock.store[(Kind.owner, "u3")] == {**owners(3)[2], "phone": "+447700900123"}


async def test_a_batch_of_properties_waits_for_owners_in_the_same_flow(client) -> None:
    await client.post("/api/crm/sync/owner/batch", json=owners(1))
    response = await client.post("/api/crm/sync/property/batch", json=properties(3))
    assert response.json()["accepted"] == 3
    for pid in ("p1", "p2", "p3"):

        async def synced(pid: str = pid) -> None:
            status = await client.get("/api/crm/sync/property", params={"propertyId": pid})
            assert status.json()["syncStatus"] == "synced", status.text

        await eventually(synced)


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b"{bad json", 400, "body"),
        (b'{"userId": "u1"}', 422, "body"),
        (b"null", 422, "body"),
    ],
)
async def test_a_batch_that_is_not_an_array_is_a_clear_4xx(client, raw, status, field) -> None:
    response = await client.post(
        "/api/crm/sync/owner/batch", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["success"] is False
    assert response.json()["field"] == field


async def test_over_a_thousand_records_is_413_and_nothing_is_written(client, services) -> None:
    response = await client.post("/api/crm/sync/owner/batch", json=owners(1001))
    assert response.status_code == 413
    assert response.json()["error"].startswith("body: 1,001 records sent; at most 1,000")
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Record)) == 0
    exactly = await client.post("/api/crm/sync/owner/batch", json=owners(1000))
    assert exactly.status_code == 202
    assert exactly.json()["accepted"] == 1000


async def test_batch_needs_a_key(anonymous) -> None:
    async with anonymous(None) as nobody:
        response = await nobody.post("/api/crm/sync/owner/batch", json=owners(1))
    assert response.status_code == 401


# -- bulk ---------------------------------------------------------------------------------------


async def test_bulk_wait_answers_the_seeds_shape_with_exact_counts(ops, services, mock) -> None:
    await seed(services.sessions, Kind.owner, owners(5))
    await seed(services.sessions, Kind.property, properties(3))
    response = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "all"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Bulk sync completed"
    results = body["results"]
    assert set(results) == {"owners", "properties", "enquiries", "bookings", "memberships"}
    assert _core(results["owners"]) == {"synced": 5, "created": 5, "updated": 0, "failed": 0}
    assert results["owners"]["skipped"] == 0
    assert _core(results["properties"]) == {"synced": 3, "created": 3, "updated": 0, "failed": 0}, (
        body
    )
    assert results["enquiries"] == dict.fromkeys(results["enquiries"], 0)
    assert mock.calls == 8

    # Nothing changed: no provider call, every record skipped.
    again = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "all"})
    second = again.json()
    assert second["success"] is True
    assert (second["results"]["owners"]["skipped"], second["results"]["owners"]["synced"]) == (5, 0)
    assert second["results"]["properties"]["skipped"] == 3
    assert mock.calls == 8
    async with services.sessions() as session:
        jobs = await session.scalar(
            select(func.count()).select_from(SyncJob).where(SyncJob.bulk_id == second["bulkId"])
        )
    assert jobs == 0  # skipped without a job

    # One owner changes: only that one goes, as an update.
    await seed(services.sessions, Kind.owner, [{"userId": "u2", "name": "Renamed"}])
    third = (await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "owners"})).json()
    assert set(third["results"]) == {"owners"}
    assert third["results"]["owners"]["updated"] == 1
    assert third["results"]["owners"]["skipped"] == 4
    assert mock.calls == 9


async def test_a_bulk_with_failures_never_reports_plain_success(ops, services, mock) -> None:
    await seed(services.sessions, Kind.owner, owners(4))
    mock.faults = Faults(mode="reject", count=2)
    response = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "owners"})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is False
    assert body["message"] == "Bulk sync completed with 2 failed deliveries"
    assert _core(body["results"]["owners"]) == {
        "synced": 2,
        "created": 2,
        "updated": 0,
        "failed": 2,
    }

    # onlyFailed: just the two that failed, sent again (the mock accepts them now).
    retried = await ops.post(
        "/api/crm/sync/bulk?wait=true", json={"syncType": "owners", "onlyFailed": True}
    )
    owners_result = retried.json()["results"]["owners"]
    assert retried.json()["success"] is True
    assert (owners_result["total"], owners_result["synced"], owners_result["skipped"]) == (2, 2, 0)

    # force: everything goes again, as updates.
    calls = mock.calls
    forced = await ops.post(
        "/api/crm/sync/bulk?wait=true", json={"syncType": "owners", "force": True}
    )
    assert _core(forced.json()["results"]["owners"]) == {
        "synced": 4,
        "created": 0,
        "updated": 4,
        "failed": 0,
    }
    assert mock.calls == calls + 4


async def test_a_transient_failure_that_then_succeeds_counts_once_as_synced(
    ops, services, mock
) -> None:
    await seed(services.sessions, Kind.owner, owners(3))
    mock.faults = Faults(mode="transient", count=2)
    body = (await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "owners"})).json()
    assert body["success"] is True
    assert _core(body["results"]["owners"]) == {
        "synced": 3,
        "created": 3,
        "updated": 0,
        "failed": 0,
    }
    async with services.sessions() as session:
        failed_rows = await session.scalar(
            select(func.count())
            .select_from(SyncLog)
            .where(SyncLog.bulk_id == body["bulkId"], SyncLog.status == "failed")
        )
    assert failed_rows == 2  # the log keeps every attempt


async def test_bulk_answers_202_then_the_status_url_shows_progress_and_results(
    ops, services
) -> None:
    await seed(services.sessions, Kind.owner, owners(3))
    started = await ops.post("/api/crm/sync/bulk", json={"syncType": "owners"})
    assert started.status_code == 202
    body = started.json()
    assert body["success"] is True
    assert body["statusUrl"] == f"/api/crm/sync/bulk/{body['bulkId']}"

    async def completed() -> dict[str, Any]:
        view: dict[str, Any] = (await ops.get(body["statusUrl"])).json()
        assert view["status"] == "completed", view
        return view

    view = await eventually(completed)
    assert view["message"] == "Bulk sync completed"
    assert view["progress"] == {"queueing": False, "total": 3, "done": 3, "pending": 0}
    assert view["results"]["owners"]["created"] == 3
    assert view["finishedAt"].endswith("Z")


async def test_bulk_input_is_checked_and_needs_an_ops_key(ops, anonymous) -> None:
    missing = await ops.post("/api/crm/sync/bulk", json={})
    assert missing.status_code == 422
    assert missing.json()["field"] == "syncType"
    wrong = await ops.post("/api/crm/sync/bulk", json={"syncType": "guests"})
    assert wrong.json()["field"] == "syncType"
    typo = await ops.post("/api/crm/sync/bulk", json={"syncType": "all", "onlyfailed": True})
    assert typo.status_code == 422
    assert typo.json()["field"] == "onlyfailed"
    provider = await ops.post("/api/crm/sync/bulk", json={"syncType": "all", "provider": "x"})
    assert provider.status_code == 422
    assert provider.json()["field"] == "provider"
    unknown = await ops.get("/api/crm/sync/bulk/bulk_nope")
    assert unknown.status_code == 404
    nul = await ops.get("/api/crm/sync/bulk/bulk%00")
    assert (nul.status_code, nul.json()["field"]) == (422, "bulkId")
    nul_provider = await ops.post(
        "/api/crm/sync/bulk", json={"syncType": "all", "provider": "\x00"}
    )
    assert (nul_provider.status_code, nul_provider.json()["field"]) == (422, "provider")
    from tests.conftest import SYNC_KEY

    async with anonymous(SYNC_KEY) as website:
        forbidden = await website.post("/api/crm/sync/bulk", json={"syncType": "all"})
    assert forbidden.status_code == 403


class Second(MockProvider):
    name = "treadsoft"  # a second mock under another configured name


async def test_the_provider_filter_resyncs_to_that_provider_only(
    db_url, monkeypatch, anonymous
) -> None:
    from app.main import create_app
    from tests.conftest import OPS_KEY

    monkeypatch.setitem(FACTORIES, "treadsoft", lambda ctx: Second())
    app = create_app(make_settings(db_url, crm_providers="mock,treadsoft"))
    async with app.router.lifespan_context(app):
        services = app.state.services
        await seed(services.sessions, Kind.owner, owners(3))
        from tests.conftest import _client

        async with _client(app, OPS_KEY) as ops:
            only = await ops.post(
                "/api/crm/sync/bulk?wait=true", json={"syncType": "owners", "provider": "treadsoft"}
            )
            assert only.json()["providers"] == ["treadsoft"]
            assert only.json()["results"]["owners"]["created"] == 3
            assert services.providers["treadsoft"].calls == 3
            assert services.providers["mock"].calls == 0

            both = (
                await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "owners"})
            ).json()
            # Counted per record and provider: mock creates 3, treadsoft skips 3 it has.
            assert (both["results"]["owners"]["created"], both["results"]["owners"]["skipped"]) == (
                3,
                3,
            )
            assert both["results"]["owners"]["total"] == 6


def _core(row: dict[str, Any]) -> dict[str, int]:
    return {k: row[k] for k in ("synced", "created", "updated", "failed")}


async def _settled(client: Any, user_ids: list[str]) -> None:
    for user_id in user_ids:

        async def synced(user_id: str = user_id) -> None:
            status = await client.get("/api/crm/sync/owner", params={"userId": user_id})
            assert status.json()["syncStatus"] == "synced", status.text

        await eventually(synced)


async def test_bulk_takes_the_body_curl_sends_without_a_content_type(ops, services) -> None:
    await seed(services.sessions, Kind.owner, owners(2))
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # curl -d, no -H
    response = await ops.post(
        "/api/crm/sync/bulk?wait=true", content=b'{"syncType":"all"}', headers=form
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"]["owners"]["created"] == 2
    broken = await ops.post("/api/crm/sync/bulk", content=b"{syncType:", headers=form)
    assert broken.status_code == 400
    assert broken.json() == {"success": False, "error": "body: not valid JSON", "field": "body"}
    retry = await ops.post("/api/crm/sync/retry", content=b'{"status":"dead"}', headers=form)
    assert retry.json()["requeued"] == 0


async def test_the_openapi_document_describes_the_ops_bodies(ops) -> None:
    spec = (await ops.get("/openapi.json")).json()
    bulk = spec["paths"]["/api/crm/sync/bulk"]["post"]["requestBody"]
    ref = bulk["content"]["application/json"]["schema"]["$ref"]
    assert "syncType" in spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    batch = spec["paths"]["/api/crm/sync/owner/batch"]["post"]["requestBody"]
    assert batch["content"]["application/json"]["schema"]["maxItems"] == 1000
    assert "/api/crm/sync/logs" in spec["paths"]
