"""POST /api/crm/sync/bulk?wait=true answers as soon as the only deliveries left wait for a
parent that nothing will sync, and says so (issue 11), instead of waiting BULK_WAIT_SECONDS."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.records import Kind
from app.settings import BulkSettings, Settings
from tests.conftest import make_settings
from tests.ops.helpers import owners, properties, seed


@pytest.fixture
def settings(db_url: str) -> Settings:
    bulk = BulkSettings(_env_file=None, wait_seconds=120, poll_interval=0.05)  # type: ignore[call-arg]
    return make_settings(db_url, bulk=bulk)


async def test_a_wait_ends_when_only_children_of_a_parent_never_sent_remain(
    ops, services: Any
) -> None:
    await seed(services.sessions, Kind.owner, owners(1))
    await seed(services.sessions, Kind.property, properties(2, owner="u1"))
    await seed(services.sessions, Kind.property, [{"propertyId": "p9", "ownerId": "ghost"}])

    started = time.monotonic()
    response = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "all"})
    took = time.monotonic() - started

    assert took < 30, f"waited {took:.0f} s for a parent that will never sync"
    assert response.status_code == 202, response.text
    view = response.json()
    assert view["status"] == "delivering"
    assert view["waitingForParent"] == 1
    assert "parent" in view["message"]
    assert view["results"]["owners"]["synced"] == 1
    assert view["results"]["properties"]["synced"] == 2
    assert view["results"]["properties"]["pending"] == 1


async def test_a_wait_still_waits_for_a_parent_that_is_on_its_way(ops, services: Any) -> None:
    await seed(services.sessions, Kind.owner, owners(2))
    await seed(services.sessions, Kind.property, properties(3, owner="u2"))
    response = await ops.post("/api/crm/sync/bulk?wait=true", json={"syncType": "all"})
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "completed" and view["waitingForParent"] == 0
    assert view["results"]["properties"]["synced"] == 3
