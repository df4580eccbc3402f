"""Stripe webhook fixtures: the secret, signing the way Stripe does, the eleven story events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.models import JobStatus, Record, SyncJob
from app.records import Kind, content_hash
from app.settings import Settings
from app.webhooks.models import EventStatus, WebhookEvent
from tests.conftest import make_settings

SECRET = "whsec_test_0123456789abcdef"
OWNER_ID = "user_dev_1"
FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
# The story in order (the folder's README): file stem -> raw body, exactly as stored.
EVENTS: list[tuple[str, bytes]] = [
    (path.name.split(".", 1)[0], path.read_bytes())
    for path in sorted(FIXTURES.glob("evt_dev1_*.json"))
]


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe-Signature as Stripe computes it: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_body(**fields: Any) -> bytes:
    """A made-up event: data.object from `obj`, the rest Stripe's envelope."""
    obj = fields.pop("obj", {})
    event = {
        "id": fields.pop("id", "evt_test"),
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": fields.pop("created", 1763700000),
        "type": fields.pop("type", "customer.created"),
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": obj},
        **fields,
    }
    return json.dumps(event).encode()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, stripe_webhook_secret=SECRET)


@pytest.fixture
def stripe_post(app: Any) -> Callable[..., Any]:
    """POST a body to /api/webhooks/stripe, signed unless told otherwise; no API key."""

    async def post(body: bytes, *, signature: str | bool | None = True) -> httpx.Response:
        headers = {"Content-Type": "application/json", "User-Agent": "Stripe/1.0"}
        if signature is True:
            headers["Stripe-Signature"] = sign(body)
        elif isinstance(signature, str):
            headers["Stripe-Signature"] = signature
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post("/api/webhooks/stripe", content=body, headers=headers)

    return post


async def settle(services: Any, *, seconds: float = 15.0) -> None:
    """Until every received event is applied and every job delivered (or given up)."""
    async with asyncio.timeout(seconds):
        while True:
            handled = (
                await services.loops["inbox"].run_once() + await services.loops["worker"].run_once()
            )
            if not handled and not await waiting(services):
                return
            await asyncio.sleep(0.002)


async def waiting(services: Any) -> int:
    async with services.sessions() as session:
        events = await session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.status == EventStatus.received.value)
        )
        jobs = await session.scalar(
            select(func.count())
            .select_from(SyncJob)
            .where(
                SyncJob.status.in_(
                    [JobStatus.queued.value, JobStatus.running.value, JobStatus.waiting.value]
                )
            )
        )
    return int(events or 0) + int(jobs or 0)


async def snapshot(services: Any, kind: Kind, external_id: str) -> dict[str, Any] | None:
    async with services.sessions() as session:
        data = await session.scalar(
            select(Record.data).where(Record.kind == kind.value, Record.external_id == external_id)
        )
    return data


async def snapshots(services: Any, kind: Kind) -> dict[str, dict[str, Any]]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(Record.external_id, Record.data).where(Record.kind == kind.value)
        )
    return {external_id: data for external_id, data in rows}


async def inbox(services: Any) -> list[WebhookEvent]:
    async with services.sessions() as session:
        return list(await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


async def store_quietly(services: Any, kind: Kind, external_id: str, data: dict[str, Any]) -> None:
    """A record stored some other way than the accept path (a restore, a migration): no hook
    tells waiting events about it; only the inbox's sweep will find it."""
    async with services.sessions() as session, session.begin():
        session.add(
            Record(
                kind=kind.value,
                external_id=external_id,
                data=data,
                content_hash=content_hash(data),
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
