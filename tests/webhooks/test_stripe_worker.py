"""Where processing runs: a `crm-sync worker` applies what API replicas only stored."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest

from app.main import create_app
from app.records import Kind
from tests.conftest import OPS_KEY, make_settings
from tests.webhooks.conftest import EVENTS, SECRET, inbox, sign, snapshot

OWNER = {"userId": "user_dev_1", "name": "Dev One", "email": "dev1@example.com"}


@pytest.mark.slow
async def test_crm_sync_worker_applies_events_received_by_an_api_without_a_worker(
    db_url: str,
) -> None:
    """API replicas with WORKER_IN_PROCESS=false only store; a `crm-sync worker` applies."""
    settings = make_settings(db_url, stripe_webhook_secret=SECRET, worker_in_process=False)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        owner = await c.post(
            "/api/crm/sync/owner",
            json=OWNER,
            headers={"Authorization": f"Bearer {OPS_KEY}", "Prefer": "respond-async"},
        )
        assert owner.status_code == 202
        for _, body in EVENTS:
            answer = await c.post(
                "/api/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
            )
            assert answer.status_code == 200
        services = app.state.services
        assert {r.status for r in await inbox(services)} == {"received"}  # nobody applies here

        env = {**os.environ, "DATABASE_URL": db_url, "CRM_PROVIDERS": "mock", "API_KEYS": ""}
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from app.cli.main import main; main()",
            "worker",
            "--drain",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(worker.communicate(), 60)
        assert worker.returncode == 0, output.decode()[-2000:]

        assert {r.status for r in await inbox(services)} == {"processed"}
        membership = await snapshot(services, Kind.membership, "user_dev_1")
        assert membership is not None and membership["status"] == "cancelled"
        status = await c.get(
            "/api/crm/sync/membership",
            params={"userId": "user_dev_1"},
            headers={"Authorization": f"Bearer {OPS_KEY}"},
        )
        assert status.json()["syncStatus"] == "synced"  # delivered by that worker too
