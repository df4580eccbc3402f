"""DELETE /api/crm/sync/{kind}, as the website and ops see it (the mock provider; the other
providers' delete paths are pinned in tests/providers and end to end in tests/e2e)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db import transaction
from app.main import open_services
from app.models import SyncJob, SyncLog
from app.providers.mock import Faults
from app.sync.worker import Worker
from tests.conftest import drain, make_settings
from tests.routers.test_sync import ONE_OF_EACH

ID_OF = {kind: (id_field, str(record[id_field])) for kind, id_field, record in ONE_OF_EACH}


async def sync_all(client: httpx.AsyncClient) -> None:
    for kind, _, record in ONE_OF_EACH:
        response = await client.post(f"/api/crm/sync/{kind}", json=record)
        assert response.status_code == 200, response.text


async def delete(client: httpx.AsyncClient, kind: str, **params: Any) -> httpx.Response:
    id_field, external_id = ID_OF[kind]
    return await client.delete(f"/api/crm/sync/{kind}", params={id_field: external_id, **params})


async def logs(services: Any, action: str | None = None) -> list[SyncLog]:
    async with services.sessions() as session:
        stmt = select(SyncLog).order_by(SyncLog.id)
        if action:
            stmt = stmt.where(SyncLog.action == action)
        return list(await session.scalars(stmt))


async def test_each_kind_is_deleted_from_the_crm_once_and_then_reads_deleted(
    client, mock, services
) -> None:
    await sync_all(client)
    # Leaves first: a record with live children would answer 409 (below).
    for kind in ("enquiry", "booking", "membership", "property", "owner"):
        response = await delete(client, kind)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["message"] == f"{kind.capitalize()} deleted from CRM"
        assert body["syncStatus"] == "deleted"
        assert body["providers"]["mock"]["status"] == "deleted"
        id_field, external_id = ID_OF[kind]
        status = await client.get(f"/api/crm/sync/{kind}", params={id_field: external_id})
        assert status.json()["syncStatus"] == "deleted"
        assert status.json()["providers"]["mock"]["status"] == "deleted"
    assert mock.store == {}
    deletes = await logs(services, "delete")
    assert [(r.entity_type, r.status) for r in deletes] == [
        ("enquiry", "success"),
        ("booking", "success"),
        ("membership", "success"),
        ("property", "success"),
        ("owner", "success"),
    ]


async def test_a_repeated_delete_is_a_no_op(client, mock, services) -> None:
    await client.post("/api/crm/sync/owner", json=ONE_OF_EACH[0][2])
    assert (await delete(client, "owner")).status_code == 200
    calls, rows = mock.calls, len(await logs(services))

    again = await delete(client, "owner")

    assert again.status_code == 200
    assert again.json()["message"] == "Owner already deleted"
    assert again.json()["syncStatus"] == "deleted"
    assert mock.calls == calls
    assert len(await logs(services)) == rows


async def test_a_record_never_synced_is_404(client) -> None:
    response = await client.delete("/api/crm/sync/owner", params={"userId": "nobody"})
    assert response.status_code == 404
    assert response.json()["success"] is False
    missing_id = await client.delete("/api/crm/sync/owner")
    assert missing_id.status_code == 422
    assert missing_id.json()["field"] == "userId"


async def test_a_parent_with_live_children_is_409_naming_them(client, mock) -> None:
    await sync_all(client)
    calls = mock.calls

    response = await delete(client, "owner")

    assert response.status_code == 409
    body = response.json()
    assert body["success"] is False
    assert {(c["kind"], c["id"]) for c in body["children"]} == {
        ("property", "123"),
        ("membership", "u1"),
        ("enquiry", "e1"),
        ("booking", "b1"),
    }
    assert "cascade=true" in body["error"]
    assert mock.calls == calls  # nothing was sent, nothing marked
    status = await client.get("/api/crm/sync/owner", params={"userId": "u1"})
    assert status.json()["syncStatus"] == "synced"


async def test_cascade_deletes_children_before_their_parents(client, mock, services) -> None:
    await sync_all(client)

    response = await delete(client, "owner", cascade="true")

    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Owner deleted from CRM"
    assert mock.store == {}
    order = [r.entity_type for r in await logs(services, "delete")]
    assert sorted(order) == ["booking", "enquiry", "membership", "owner", "property"]
    # The reverse of creation order: each parent's delete after every child's.
    assert order.index("property") > max(order.index("enquiry"), order.index("booking"))
    assert order.index("owner") > max(order.index("property"), order.index("membership"))
    for kind in ID_OF:
        id_field, external_id = ID_OF[kind]
        status = await client.get(f"/api/crm/sync/{kind}", params={id_field: external_id})
        assert status.json()["syncStatus"] == "deleted", kind


async def test_a_post_after_a_delete_creates_the_record_again(client, mock, services) -> None:
    owner = ONE_OF_EACH[0][2]
    await client.post("/api/crm/sync/owner", json=owner)
    await delete(client, "owner")

    again = await client.post("/api/crm/sync/owner", json=owner)

    assert again.status_code == 200, again.text
    assert again.json()["message"] == "Owner synced to CRM successfully"
    assert again.json()["syncStatus"] == "synced"
    assert ("owner", "u1") in mock.store
    actions = [(r.action, r.status) for r in await logs(services)]
    assert actions == [("create", "success"), ("delete", "success"), ("create", "success")]


async def test_a_crm_failing_the_delete_is_retried_like_any_delivery(
    client, mock, services
) -> None:
    await client.post("/api/crm/sync/owner", json=ONE_OF_EACH[0][2])
    mock.faults = Faults(mode="transient", count=2)

    response = await delete(client, "owner")

    assert response.status_code == 200, response.text
    deletes = await logs(services, "delete")
    assert [(r.status, r.attempt) for r in deletes] == [
        ("failed", 1),
        ("failed", 2),
        ("success", 3),
    ]
    assert deletes[0].error == "mock: 503 service unavailable"


async def test_a_delete_the_crm_refuses_is_502_with_its_reason(client, mock) -> None:
    await client.post("/api/crm/sync/owner", json=ONE_OF_EACH[0][2])
    mock.faults = Faults(mode="reject", count=1)

    response = await delete(client, "owner")

    assert response.status_code == 502
    assert "rejected by request" in response.json()["error"]
    assert response.json()["syncStatus"] == "failed"
    assert response.json()["syncLogId"] is not None


async def test_bulk_never_resurrects_a_deleted_record(ops, client, mock, services) -> None:
    await sync_all(client)
    await delete(client, "enquiry")
    mock.store.clear()  # so any delivery the bulk makes would show

    run = await ops.post(
        "/api/crm/sync/bulk", params={"wait": "true"}, json={"syncType": "all", "force": True}
    )

    assert run.status_code == 200, run.text
    assert ("enquiry", "e1") not in mock.store
    assert ("booking", "b1") in mock.store
    status = await client.get("/api/crm/sync/enquiry", params={"enquiryId": "e1"})
    assert status.json()["syncStatus"] == "deleted"


# -- with the worker driven by the test, to hold deliveries back ------------------------------


@pytest.fixture
async def held(db_url: str) -> Any:
    """The API without an in-process worker, and a Worker the test runs when it wants."""
    from app.main import create_app

    settings = make_settings(db_url, worker_in_process=False, sync_wait_seconds=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        worker = Worker(services.sessions, services.providers, settings.delivery)
        transport = httpx.ASGITransport(app=app)
        from tests.conftest import SYNC_KEY

        headers = {"Authorization": f"Bearer {SYNC_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            yield client, services, worker


async def test_a_delete_behind_a_pending_create_sends_nothing(held) -> None:
    client, services, worker = held
    mock = services.providers["mock"]
    created = await client.post("/api/crm/sync/owner", json=ONE_OF_EACH[0][2])
    assert created.status_code == 202  # queued, not delivered

    deleted = await delete(client, "owner")
    assert deleted.status_code == 202
    await drain(worker)

    assert mock.calls == 0
    assert mock.store == {}
    status = await client.get("/api/crm/sync/owner", params={"userId": "u1"})
    assert status.json()["syncStatus"] == "deleted"
    async with services.sessions() as session:
        jobs = list(await session.scalars(select(SyncJob)))
    assert [(j.operation, j.status) for j in jobs] == [("delete", "done")]
    [row] = await logs(services)
    assert (row.action, row.status, row.error) == ("delete", "skipped", "never created at mock")


async def test_a_post_while_a_delete_is_queued_takes_it_back(held) -> None:
    client, services, worker = held
    mock = services.providers["mock"]
    owner = ONE_OF_EACH[0][2]
    await client.post("/api/crm/sync/owner", json=owner)
    await drain(worker)
    await delete(client, "owner")

    await client.post("/api/crm/sync/owner", json={**owner, "name": "Ann Again"})
    await drain(worker)

    assert mock.store[("owner", "u1")]["name"] == "Ann Again"
    status = await client.get("/api/crm/sync/owner", params={"userId": "u1"})
    assert status.json()["syncStatus"] == "synced"
    assert [r.action for r in await logs(services)] == ["create", "update"]


async def test_deletes_wait_for_children_even_when_claimed_together(db_url) -> None:
    """Parent and child deletes claimed in one round: the parent waits, then goes once the
    child's delete is in."""
    settings = make_settings(db_url, worker_in_process=False)
    async with open_services(settings, with_loops=False) as services:
        from app.records import Kind
        from app.sync.accept import accept_one, load_record
        from app.sync.deletes import mark_deleted

        worker = Worker(services.sessions, services.providers, settings.delivery)
        for kind, _, record in ONE_OF_EACH[:3]:
            async with transaction(services.sessions) as session:
                await accept_one(session, Kind(kind), record, ["mock"], "GB")
        await drain(worker)
        async with transaction(services.sessions) as session:
            owner = await load_record(session, Kind.owner, "u1")
            assert owner is not None
            await mark_deleted(session, owner, ["mock"], cascade=True)
        await drain(worker)
        order = [r.entity_type for r in await logs(services, "delete")]
    assert order == ["enquiry", "property", "owner"]
