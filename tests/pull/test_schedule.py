"""The scheduled pull: one per period however many workers tick; and the status page."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import make_engine, make_sessionmaker
from app.providers.registry import ProviderContext, build_providers
from app.pull.models import Lead, PullRun
from app.pull.service import PullScheduler, period_of
from tests.e2e.conftest import HUBSPOT_TOKEN
from tests.eventually import eventually
from tests.pull.conftest import pull_settings

CRM_SYNC = Path(sys.executable).parent / "crm-sync"


def test_periods_are_named_by_their_start() -> None:
    assert period_of(7200.0, 3600) == period_of(10799.9, 3600) == "1970-01-01T02:00:00Z"
    assert period_of(10800.0, 3600) == "1970-01-01T03:00:00Z"


async def test_two_schedulers_in_one_period_pull_once(db_url, fake, sessions) -> None:
    hubspot, url = fake
    hubspot.seed_contacts([{"email": "s@example.com"}])
    settings = pull_settings(db_url, url, enabled=True, interval_seconds=3600)
    engines = [make_engine(db_url) for _ in range(2)]
    schedulers = []
    for engine in engines:
        made = make_sessionmaker(engine)
        providers = build_providers(ProviderContext(settings=settings, sessions=made))
        schedulers.append((PullScheduler(made, providers, settings), providers))
    try:
        await asyncio.gather(*(s.run_once() for s, _ in schedulers))
        await asyncio.gather(*(s.run_once() for s, _ in schedulers))
    finally:
        for _, providers in schedulers:
            for provider in providers.values():
                await provider.aclose()
        for engine in engines:
            await engine.dispose()

    assert sum(s.runs for s, _ in schedulers) == 1
    assert hubspot.searches == 1
    async with sessions() as session:
        runs = list(await session.scalars(select(PullRun)))
        assert [(r.trigger, r.status, r.created) for r in runs] == [("schedule", "done", 1)]
        assert len(list(await session.scalars(select(Lead)))) == 1


async def test_status_shows_the_last_pull_beside_the_push(pulling) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts([{"email": "st@example.com"}, {"company": "No one"}])
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    await ops.post("/api/crm/pull", json={"strategy": "preview"})  # previews are not pulls

    status = (await ops.get("/api/crm/status")).json()["providers"]["hubspot"]

    assert status["connected"] is True
    assert status["lastPullAt"] is not None
    pulled = status["lastPull"]
    assert (pulled["trigger"], pulled["strategy"], pulled["status"]) == ("api", "overwrite", "done")
    assert (pulled["created"], pulled["skipped"], pulled["fetched"]) == (1, 1, 2)
    assert {"lastPushAt", "lastSyncedAt", "queueDepth", "failures"} <= set(status)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_worker_processes_pull_once_per_period(db_url, fake, sessions, tmp_path) -> None:
    hubspot, url = fake
    hubspot.seed_contacts([{"email": "w@example.com"}])
    period = 3.0
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CRM_PROVIDERS": "hubspot",
        "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
        "HUBSPOT_BASE_URL": url,
        "PULL_INTERVAL_SECONDS": str(period),
        "DELIVERY_POLL_INTERVAL": "0.05",
    }
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [
        await asyncio.create_subprocess_exec(
            str(CRM_SYNC),
            "worker",
            env=env,
            stdout=log.open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        for log in logs
    ]
    try:

        async def two_scheduled_pulls_done() -> None:
            async with sessions() as session:
                done = list(
                    await session.scalars(
                        select(PullRun).where(
                            PullRun.trigger == "schedule", PullRun.status == "done"
                        )
                    )
                )
            assert len(done) >= 2

        await eventually(two_scheduled_pulls_done, seconds=30, every=0.05)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            await worker.wait()

    async with sessions() as session:
        runs = list(await session.scalars(select(PullRun).order_by(PullRun.id)))
    output = "\n".join(log.read_text() for log in logs)
    assert len(runs) == 2, output
    assert len({r.period for r in runs}) == 2
    assert hubspot.searches == 2  # one search per run: the pull ran twice, not four times
    assert [r.created for r in runs] == [1, 0]


async def test_the_pull_command_prints_the_counts(db_url, fake, sessions) -> None:
    hubspot, url = fake
    hubspot.seed_contacts([{"email": "cli@example.com"}, {"email": "CLI@example.com"}])
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CRM_PROVIDERS": "hubspot",
        "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
        "HUBSPOT_BASE_URL": url,
    }

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            str(CRM_SYNC), "pull", *args, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await process.communicate()
        return process.returncode or 0, out.decode(), err.decode()

    code, out, _ = await run("--strategy", "preview")
    assert code == 0
    preview = json.loads(out)
    assert (preview["created"], preview["skipped"], preview["strategy"]) == (1, 1, "preview")
    async with sessions() as session:
        assert list(await session.scalars(select(Lead))) == []

    code, out, _ = await run()
    assert code == 0 and json.loads(out)["created"] == 1
    async with sessions() as session:
        assert [lead.email for lead in await session.scalars(select(Lead))] == ["cli@example.com"]
    code, _, err = await run("--strategy", "merge")
    assert code == 2 and "--strategy" in err
