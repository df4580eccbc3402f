"""The worker writes a batch's outcomes in one executemany: batches of several records too."""

from __future__ import annotations

from app.providers.mock import Faults
from tests.conftest import drain


async def test_a_batch_of_several_records_is_delivered_and_judged(client, services, mock) -> None:
    owners = [{"userId": f"u{i}", "email": f"u{i}@example.com"} for i in range(3)]
    mock.faults = Faults(mode="transient", count=3)  # the first batch fails as a whole
    for owner in owners:
        answer = await client.post(
            "/api/crm/sync/owner", json=owner, headers={"Prefer": "respond-async"}
        )
        assert answer.status_code == 202
    await drain(services.loops["worker"])
    for owner in owners:
        status = await client.get("/api/crm/sync/owner", params={"userId": owner["userId"]})
        assert status.json()["syncStatus"] == "synced"
    assert {rid for _, rid in mock.store} == {"u0", "u1", "u2"}
