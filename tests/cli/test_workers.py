"""`crm-sync bulk` and `crm-sync workers` next to a running server: one process delivers, and
every line says which."""

from __future__ import annotations

import json

from app.records import Kind
from tests.eventually import eventually
from tests.ops.helpers import owners, seed
from tests.ops.test_cli import crm_sync


async def until_a_worker_beats(db_url: str) -> None:
    async def listed() -> None:
        shown = await crm_sync(db_url, "workers")
        assert "serve pid" in shown.output, shown.output

    await eventually(listed)


async def test_bulk_next_to_a_running_server_leaves_delivery_to_it(app, mock, sessions, db_url):
    await seed(sessions, Kind.owner, owners(5))
    await until_a_worker_beats(db_url)

    result = await crm_sync(db_url, "bulk", "--type", "owners", "--json")

    assert result.exit_code == 0, result.output
    assert "delivery by the running worker(s): serve pid" in result.output
    view = json.loads(result.output[result.output.index("{") :])
    assert view["results"]["owners"]["created"] == 5
    # The server's mock got every record: none went to a second, short-lived mock in the CLI.
    assert sorted(rid for kind, rid in mock.store if kind is Kind.owner) == [
        f"u{i}" for i in range(1, 6)
    ]


async def test_bulk_with_no_worker_running_delivers_itself_and_says_so(sessions, db_url):
    await seed(sessions, Kind.owner, owners(2))

    result = await crm_sync(db_url, "bulk", "--type", "owners")

    assert result.exit_code == 0, result.output
    assert "no `crm-sync serve` or `crm-sync worker` is running" in result.output
    assert "delivering from this process" in result.output
    assert "the mock provider here is this process's own" in result.output


async def test_workers_here_is_a_health_check(app, db_url) -> None:
    await until_a_worker_beats(db_url)
    alive = await crm_sync(db_url, "workers", "--here")
    assert alive.exit_code == 0
    assert "serve pid" in alive.output and "delivering to mock" in alive.output


async def test_workers_here_fails_when_no_worker_runs(db_url) -> None:
    none = await crm_sync(db_url, "workers", "--here")
    assert none.exit_code == 1
    assert "no worker on " in none.output
