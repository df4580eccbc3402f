"""The fake HubSpot answers as HubSpot documents: its limit, its errors, its faults."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from app.fakes.hubspot import FakeHubSpot

TOKEN = "fake-token"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def client(fake: FakeHubSpot, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.asgi()), base_url="http://fake", headers=headers
    )


def owners(*emails: str) -> dict:
    return {
        "inputs": [
            {
                "idProperty": "email",
                "id": e,
                "objectWriteTraceId": str(n),
                "properties": {"email": e},
            }
            for n, e in enumerate(emails)
        ]
    }


async def test_the_rolling_limit_answers_hubspots_429_and_headers() -> None:
    fake = FakeHubSpot(rate_limit=3, token=TOKEN)
    async with client(fake) as c:
        answers = [await c.post(UPSERT, json=owners(f"a{n}@example.com")) for n in range(4)]
        stats = (await c.get("/_fake/stats")).json()

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert answers[2].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    body = answers[3].json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert stats["maxInWindow"] == 4 and stats["rateLimited"] == 1


async def test_upserts_are_idempotent_and_bad_emails_fail_alone_in_a_207() -> None:
    fake = FakeHubSpot(token=TOKEN)
    async with client(fake) as c:
        first = await c.post(UPSERT, json=owners("Ann@example.com", "bad@@example"))
        again = await c.post(UPSERT, json=owners("ann@example.com"))

    assert first.status_code == 207
    [result] = first.json()["results"]
    [error] = first.json()["errors"]
    assert result["new"] is True and result["objectWriteTraceId"] == "0"
    assert error["category"] == "VALIDATION_ERROR"
    assert error["context"] == {"objectWriteTraceId": ["1"]}
    assert "Email address bad@@example is invalid" in error["message"]
    assert again.json()["results"][0]["id"] == result["id"]
    assert again.json()["results"][0]["new"] is False
    assert len(fake.store.objects["contacts"]) == 1


async def test_bodies_are_checked_against_our_request_models_and_tokens_required() -> None:
    fake = FakeHubSpot(token=TOKEN)
    async with client(fake) as c:
        bad = await c.post(UPSERT, json={"inputs": [{"id": "x@example.com"}]})
    async with client(fake, token="wrong") as c:
        unauthorised = await c.post(UPSERT, json=owners("a@example.com"))

    assert bad.status_code == 400
    assert bad.json()["category"] == "VALIDATION_ERROR"
    assert "inputs.0.properties: Field required" in bad.json()["message"]
    assert unauthorised.status_code == 401
    assert unauthorised.json()["category"] == "INVALID_AUTHENTICATION"


async def test_a_dropped_connection_fault_after_processing_keeps_the_record() -> None:
    fake = FakeHubSpot(token=TOKEN)
    async with client(fake) as c:
        await c.put("/_fake/faults", json={"mode": "drop", "count": 1, "when": "after"})
        with pytest.raises(Exception, match="dropped"):
            await c.post(UPSERT, json=owners("a@example.com"))
        stats = (await c.get("/_fake/stats")).json()

    assert stats["faultsServed"] == {"drop": 1}
    assert len(fake.store.objects["contacts"]) == 1


async def test_the_cli_serves_it(free_port) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "crm-sync"),
        "fake-hubspot",
        "--port",
        str(port),
        "--rate-limit",
        "7",
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as c:
            for _ in range(200):
                try:
                    stats = (await c.get(f"http://127.0.0.1:{port}/_fake/stats")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
    finally:
        process.terminate()
        await process.wait()

    assert stats["rateLimit"] == 7 and stats["requests"] == 0
