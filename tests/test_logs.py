"""Request ids: answered in X-Request-ID and carried by every log line written for the request."""

from __future__ import annotations

import io
import json
import logging

from app.logs import JsonFormatter, RequestIdFilter
from tests.ops.helpers import owners


async def test_each_request_gets_an_id_that_its_log_lines_carry(client, mock) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    accepted_log = logging.getLogger("app.sync.service")
    accepted_log.addHandler(handler)
    try:
        given = await client.post(
            "/api/crm/sync/owner", json=owners(1)[0], headers={"X-Request-ID": "req-abc.123"}
        )
        made = await client.post("/api/crm/sync/owner", json=owners(1, start=2)[0])
        hostile = await client.post(
            "/api/crm/sync/owner",
            json=owners(1, start=3)[0],
            headers={"X-Request-ID": "x\r\nSet-Cookie: a=b" + "z" * 80},
        )
    finally:
        accepted_log.removeHandler(handler)
    assert given.headers["x-request-id"] == "req-abc.123"
    assert len(made.headers["x-request-id"]) == 32  # a fresh uuid4 hex
    assert hostile.headers["x-request-id"] != "x" and "\n" not in hostile.headers["x-request-id"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_record = {line["record"]: line for line in lines}
    assert by_record["owner/u1"]["request_id"] == "req-abc.123"
    assert by_record["owner/u1"]["message"] == "accepted owner/u1: 1 job(s) queued"
    assert by_record["owner/u2"]["request_id"] == made.headers["x-request-id"]


async def test_worker_lines_carry_the_job_id_and_record(client, ops, mock, caplog) -> None:
    from app.providers.mock import Faults

    mock.faults = Faults(mode="reject")
    with caplog.at_level(logging.WARNING, logger="app.sync.worker"):
        response = await client.post("/api/crm/sync/owner", json=owners(1)[0])
    job_lines = [r for r in caplog.records if getattr(r, "job_id", None) is not None]
    assert job_lines, caplog.text
    assert job_lines[0].record == "owner/u1"  # type: ignore[attr-defined]
    assert job_lines[0].provider == "mock"  # type: ignore[attr-defined]
    logged = (await ops.get("/api/crm/sync/logs", params={"entityId": "u1"})).json()["logs"]
    assert logged[0]["id"] == response.json()["syncLogId"]
    assert logged[0]["jobId"] == job_lines[0].job_id  # type: ignore[attr-defined]
