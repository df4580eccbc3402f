"""`crm-sync bulk`, `retry`, `logs` and `purge-logs`, run as ops would (typer's CliRunner)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner, Result

from app.cli.main import cli
from app.db import transaction, utcnow
from app.models import SyncLog
from app.providers.mock import Faults
from app.records import Kind
from app.settings import Settings
from tests.conftest import make_settings
from tests.ops.helpers import owners, seed
from tests.routers.test_logs import make_failures, until_status


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, delivery={"retry_horizon": 0.001})  # dead at the 2nd failure


async def crm_sync(db_url: str, *args: str, **env: str) -> Result:
    """The command in a thread (it runs its own event loop), configured by environment."""
    environment = {
        "DATABASE_URL": db_url,
        "CRM_PROVIDERS": "mock",
        "APP_ENV": "development",
        "DELIVERY_POLL_INTERVAL": "0.01",
        "BULK_POLL_INTERVAL": "0.01",
        **env,
    }
    return await asyncio.to_thread(
        CliRunner().invoke, cli, list(args), env=environment, catch_exceptions=False
    )


async def test_failed_and_dead_jobs_are_found_with_logs_and_replayed_with_retry(
    client, mock, db_url
) -> None:
    await make_failures(client, mock)  # u1, u2 dead; u3 rejected

    table = await crm_sync(db_url, "logs", "--status", "failed")
    assert table.exit_code == 0, table.output
    assert "owner/u3" in table.output and "owner/u1" in table.output

    listed = await crm_sync(db_url, "logs", "--status", "failed", "--json", "--limit", "2")
    page = json.loads(listed.output)
    assert page["logs"][0]["entityId"] == "u3"
    assert page["logs"][0]["response"]["message"] == "rejected by request"
    assert page["nextCursor"]
    rest = json.loads(
        (
            await crm_sync(
                db_url, "logs", "--status", "failed", "--json", "--cursor", page["nextCursor"]
            )
        ).output
    )
    assert len(page["logs"]) + len(rest["logs"]) == 5

    mock.faults = Faults()  # the CRM is healthy again
    dead = await crm_sync(db_url, "retry", "--status", "dead")
    assert dead.exit_code == 0
    assert dead.output.strip() == "2 dead job(s) requeued"
    for user_id in ("u1", "u2"):
        await until_status(client, user_id, "synced")
    failed = await crm_sync(db_url, "retry", "--status", "failed", "--entity-type", "owner")
    assert failed.output.strip() == "1 failed job(s) requeued"
    await until_status(client, "u3", "synced")

    history = json.loads((await crm_sync(db_url, "logs", "--entity-id", "u3", "--json")).output)
    assert [r["status"] for r in history["logs"]] == ["success", "failed"]


async def test_bad_options_are_named(db_url) -> None:
    wrong_kind = await crm_sync(db_url, "logs", "--entity-type", "guest")
    assert wrong_kind.exit_code == 2
    assert "--entity-type" in wrong_kind.output
    wrong_status = await crm_sync(db_url, "retry", "--status", "done")
    assert wrong_status.exit_code == 2
    wrong_provider = await crm_sync(db_url, "retry", "--status", "dead", "--provider", "x")
    assert "--provider" in wrong_provider.output
    wrong_age = await crm_sync(db_url, "purge-logs", "--older-than", "ninety days")
    assert wrong_age.exit_code == 2
    assert "--older-than" in wrong_age.output


async def test_bulk_runs_here_with_progress_and_reports_counts(sessions, db_url) -> None:
    await seed(sessions, Kind.owner, owners(6))
    first = await crm_sync(db_url, "bulk", "--type", "owners")
    assert first.exit_code == 0, first.output
    assert "Bulk sync completed" in first.output
    assert "owners" in first.output

    again = await crm_sync(db_url, "bulk", "--type", "owners", "--json")
    view = json.loads(again.output[again.output.index("{") :])
    assert view["success"] is True
    assert view["results"]["owners"]["skipped"] == 6
    assert view["results"]["owners"]["synced"] == 0


async def test_bulk_exits_1_when_deliveries_failed(sessions, db_url) -> None:
    await seed(sessions, Kind.owner, owners(3))
    result = await crm_sync(db_url, "bulk", "--type", "all", "--json", MOCK_FAULT="reject")
    assert result.exit_code == 1
    view = json.loads(result.output[result.output.index("{") :])
    assert view["success"] is False
    assert view["message"] == "Bulk sync completed with 3 failed deliveries"
    assert view["results"]["owners"]["failed"] == 3


async def test_purge_logs_deletes_old_rows_in_batches(sessions, db_url) -> None:
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "created_at": now - timedelta(days=age),
            "provider": "mock",
            "entity_type": "owner",
            "entity_id": f"u{i}",
            "action": "create",
            "status": "success",
            "attempt": 1,
        }
        for i, age in enumerate([100, 95, 91, 91, 89, 1])
    ]
    async with transaction(sessions) as session:
        await session.execute(insert(SyncLog), rows)

    dry = await crm_sync(db_url, "purge-logs", "--older-than", "90d", "--dry-run")
    assert dry.output.strip() == "4 sync-log row(s) older than 90d would be deleted"
    purged = await crm_sync(db_url, "purge-logs", "--older-than", "90d", "--batch-size", "3")
    assert purged.exit_code == 0, purged.output
    assert purged.output.strip().endswith("4 sync-log row(s) older than 90d deleted")
    async with sessions() as session:
        left = list(await session.scalars(select(SyncLog.entity_id).order_by(SyncLog.id)))
        assert left == ["u4", "u5"]
        assert await session.scalar(select(func.count()).select_from(SyncLog)) == 2
