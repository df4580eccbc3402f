"""PostgreSQL going away under a running server (issue 11, acceptance 3): the API answers 503 with
Retry-After on the same kept-alive connection, logs one line per kind of failure, and answers
2xx again as soon as the database is back, without a restart.

It runs its own throwaway cluster (pg_createcluster) on a free port, so stopping it never
touches the main cluster on 5432; skipped where the cluster tools or root are missing."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.main import create_app
from app.migrate import upgrade
from tests.conftest import SYNC_KEY, make_settings
from tests.e2e.conftest import serve
from tests.eventually import eventually

VERSION = "15"
pytestmark = pytest.mark.skipif(
    shutil.which("pg_createcluster") is None
    or not os.path.isdir(f"/usr/lib/postgresql/{VERSION}")
    or os.geteuid() != 0,
    reason="needs root and pg_createcluster to run a throwaway PostgreSQL cluster",
)


def ctl(*args: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", VERSION, *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def cluster(free_port: Any) -> Iterator[tuple[str, str]]:
    """(name, database URL) of a new cluster with trust auth over TCP, dropped afterwards."""
    name, port = f"edge_outage_{uuid.uuid4().hex[:8]}", free_port()
    subprocess.run(
        ["pg_createcluster", VERSION, name, "--port", str(port), "--", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        ctl(name, "start")
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "crm_sync"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield name, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/crm_sync"
    finally:
        subprocess.run(
            ["pg_dropcluster", VERSION, name, "--stop"], capture_output=True, timeout=120
        )


class Keepalive:
    """One HTTP/1.1 connection, kept: a request that finds it closed fails instead of quietly
    reconnecting, so a reset by the server shows."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.conn.connect()
        self.sock = self.conn.sock

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {SYNC_KEY}", "Content-Type": "application/json"}
        headers["Prefer"] = "respond-async"
        data = json.dumps(body) if body is not None else None
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = json.loads(response.read() or b"null")
        assert self.conn.sock is self.sock, "the server closed the connection"
        assert (response.getheader("connection") or "").lower() != "close"
        return response.status, dict(response.getheaders()), payload


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_database_outage_is_a_503_with_retry_after_then_recovers(
    cluster: tuple[str, str], free_port: Any
) -> None:
    name, url = cluster
    await asyncio.to_thread(upgrade, url)
    settings = make_settings(url, worker_in_process=False, sync_wait_seconds=0)
    app = create_app(settings)  # sets up logging: listen after it
    logged = Lines()
    logging.getLogger().addHandler(logged)
    async with app.router.lifespan_context(app), serve(app, free_port()) as base:
        client = Keepalive(base)
        owner = {"userId": "u1", "name": "Ann"}
        status, _, _ = await asyncio.to_thread(client.request, "POST", "/api/crm/sync/owner", owner)
        assert status == 202

        await asyncio.to_thread(ctl, name, "stop", "-m", "fast")
        logged.records.clear()
        for _ in range(10):
            for method, path, body in (
                ("GET", "/api/crm/sync/owner?userId=u1", None),
                ("POST", "/api/crm/sync/owner", {"userId": "u2", "name": "Bo"}),
            ):
                status, headers, answer = await asyncio.to_thread(
                    client.request, method, path, body
                )
                assert status == 503, answer
                assert int(headers["retry-after"]) > 0
                assert answer["success"] is False and "database" in answer["error"]
        lines = [r.getMessage() for r in logged.records]
        assert 1 <= len(lines) <= 2, lines  # one per kind of failure, not one per request
        assert all(r.exc_info is None for r in logged.records), "an outage needs no traceback"

        await asyncio.to_thread(ctl, name, "start")

        async def answers_again() -> None:
            status, _, answer = await asyncio.to_thread(
                client.request, "GET", "/api/crm/sync/owner?userId=u1", None
            )
            assert status == 200, answer

        await eventually(answers_again, seconds=30, every=0.2)
        status, _, _ = await asyncio.to_thread(
            client.request, "POST", "/api/crm/sync/owner", {"userId": "u2", "name": "Bo"}
        )
        assert status == 202
        logging.getLogger().removeHandler(logged)
