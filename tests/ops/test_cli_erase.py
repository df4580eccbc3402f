"""`crm-sync erase`, run as ops would."""

from __future__ import annotations

import json

from sqlalchemy import select

from app.models import Record, SyncLog
from app.ops.models import Erasure
from tests.ops.test_cli import crm_sync

OWNER = {
    "userId": "u9",
    "name": "Nina Nobody",
    "email": "nina@example.com",
    "phone": "07700 900999",
}


async def test_erase_from_the_shell_prints_the_counts_and_leaves_an_audit(
    client, services, db_url
) -> None:
    assert (await client.post("/api/crm/sync/owner", json=OWNER)).status_code == 200

    result = await crm_sync(
        db_url, "erase", "--email", "nina@example.com", "--json", ERASURE_HASH_KEY="k" * 32
    )

    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["status"] == "completed" and answer["success"] is True
    assert answer["counts"]["records"] == 1
    assert answer["counts"]["sync_log"] >= 1
    async with services.sessions() as session:
        [record] = await session.scalars(select(Record))
        requests = [r.request for r in await session.scalars(select(SyncLog))]
        [audit] = await session.scalars(select(Erasure))
    assert record.data == {"userId": "u9"} and record.deleted_at is not None
    assert "nina" not in json.dumps(requests).lower()
    assert audit.subject is None and audit.email_hash


async def test_erase_without_a_person_says_so_and_without_a_key_keeps_no_hash(
    services, db_url
) -> None:
    nobody = await crm_sync(db_url, "erase", ERASURE_HASH_KEY="k" * 32)
    no_key = await crm_sync(db_url, "erase", "--email", "a@example.com", "--json")
    assert nobody.exit_code == 2 and "email" in nobody.output
    assert no_key.exit_code == 0, no_key.output
    async with services.sessions() as session:
        [audit] = await session.scalars(select(Erasure))
    assert audit.email_hash is None and audit.subject is None
