"""Erasure (POST /api/crm/erase): a person synced, pulled back as a lead and named by Stripe is
forgotten everywhere: no table holds their email, name or phone afterwards, HubSpot was asked
for its GDPR delete, and an audit row without personal data is left."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import JSON, String, Text, cast, func, select

from app.db import Base
from app.fakes.hubspot import FakeHubSpot
from app.main import create_app
from app.models import Record
from app.ops.models import Erasure
from app.providers.internal.models import CrmEnquiry
from app.pull.models import Lead
from app.settings import BulkSettings, PullSettings
from tests.conftest import OPS_KEY, SYNC_KEY, make_settings
from tests.e2e.conftest import HUBSPOT_TOKEN, Running, serve
from tests.e2e.test_hubspot_e2e import hubspot_settings
from tests.eventually import eventually
from tests.webhooks.conftest import SECRET, event_body, sign

HASH_KEY = "erasure-test-key-0123456789abcdef"

OWNER = {
    "userId": "user_js",
    "name": "John Smith",
    "email": "john.smith@example.com",
    "phone": "07700 900123",
}
GUEST = {
    "guestName": "Gus Guesterson",
    "guestEmail": "gus.g@example.com",
    "guestPhone": "07700 900456",
}
# What must be found nowhere afterwards (any case), per person.
JOHN = ("john.smith@example.com", "John Smith", "+447700900123", "07700 900123")
GUS = ("gus.g@example.com", "Gus Guesterson", "+447700900456", "07700 900456")


@pytest.fixture
async def fake_hubspot(free_port) -> AsyncIterator[Running]:
    """The fake HubSpot served on a local port (as in tests/e2e)."""
    fake = FakeHubSpot(rate_limit=100, token=HUBSPOT_TOKEN)
    async with serve(fake.asgi(), free_port()) as url:
        yield Running(fake, url)


@pytest.fixture
async def site(db_url: str, fake_hubspot: Running) -> AsyncIterator[Any]:
    settings = make_settings(
        db_url,
        crm_providers="internal,hubspot,mock",
        hubspot=hubspot_settings(fake_hubspot.url),
        stripe_webhook_secret=SECRET,
        erasure_hash_key=HASH_KEY,
        sync_wait_seconds=10.0,
        pull=PullSettings(_env_file=None, enabled=False),  # type: ignore[call-arg]
        bulk=BulkSettings(_env_file=None, wait_seconds=60, poll_interval=0.05),  # type: ignore[call-arg]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def api(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


async def occurrences(app: Any, needles: tuple[str, ...]) -> list[str]:
    """Every (table.column) holding any needle, over every text and JSON column of every table
    the metadata knows (found here, not from the code under test)."""
    found = []
    async with app.state.services.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                impl = getattr(column.type, "impl", column.type)
                if not isinstance(column.type, String | Text | JSON) and not isinstance(
                    impl, String | Text | JSON
                ):
                    continue
                as_text = func.lower(cast(column, Text))
                for needle in needles:
                    hits = await session.scalar(
                        select(func.count())
                        .select_from(table)
                        .where(as_text.contains(needle.lower(), autoescape=True))
                    )
                    if hits:
                        found.append(f"{table.name}.{column.name} has {needle!r}")
    return found


async def test_a_person_is_erased_from_every_store_and_every_crm(site, fake_hubspot) -> None:
    services = site.state.services
    async with api(site, SYNC_KEY) as website, api(site, OPS_KEY) as ops:
        # Synced: an owner, their property, two enquiries and a booking naming a guest.
        records = [
            ("owner", OWNER),
            ("property", {"propertyId": "p1", "ownerId": "user_js", "title": "Sea View Barn"}),
            ("enquiry", {"enquiryId": "e1", "propertyId": "p1", "message": "May?", **GUEST}),
            ("enquiry", {"enquiryId": "e2", "propertyId": "p1", "message": "June?", **GUEST}),
            ("booking", {"bookingId": "b1", "propertyId": "p1", "totalPrice": 900, **GUEST}),
        ]
        for kind, body in records:
            response = await website.post(f"/api/crm/sync/{kind}", json=body)
            assert response.status_code == 200, response.text
        # Pulled back from HubSpot: leads with the same emails.
        pulled = await ops.post("/api/crm/pull", json={"provider": "hubspot"})
        assert pulled.status_code == 200, pulled.text
        async with services.sessions() as session:
            emails = set(await session.scalars(select(Lead.email)))
        assert {"john.smith@example.com", "gus.g@example.com"} <= emails
        # A Stripe event naming the owner.
        failed_payment = event_body(
            id="evt_erase_1",
            type="payment_intent.payment_failed",
            obj={
                "id": "pi_1",
                "object": "payment_intent",
                "amount": 9900,
                "currency": "gbp",
                "metadata": {"userId": "user_js"},
                "receipt_email": "john.smith@example.com",
                "last_payment_error": {"message": "Card declined for John Smith"},
                "shipping": {"name": "John Smith", "phone": "+447700900123"},
            },
        )
        stripe = await website.post(
            "/api/webhooks/stripe",
            content=failed_payment,
            headers={"Stripe-Signature": sign(failed_payment), "Content-Type": "application/json"},
        )
        assert stripe.status_code == 200

        async def applied() -> None:
            async with services.sessions() as session:
                notes = await session.scalar(
                    select(func.count()).select_from(Record).where(Record.kind == "note")
                )
            assert notes == 1

        await eventually(applied, seconds=20)
        assert await occurrences(site, JOHN) and await occurrences(site, GUS)

        john = await ops.post("/api/crm/erase", json={"email": "John.Smith@example.com"})
        gus = await ops.post("/api/crm/erase", json={"email": "gus.g@example.com"})

        assert john.status_code == 200, john.text
        assert gus.status_code == 200, gus.text
        for answer in (john.json(), gus.json()):
            assert answer["success"] is True, answer
            assert answer["status"] == "completed"
            assert {p["failed"] for p in answer["providers"].values()} == {0}
        assert john.json()["counts"]["leads"] == 1
        assert john.json()["counts"]["records"] == 3  # owner, the Stripe note and activity
        assert gus.json()["counts"]["records"] == 3  # two enquiries and a booking, blanked

        assert await occurrences(site, JOHN + GUS) == []
        # HubSpot permanently deleted both contacts.
        gdpr = await fake_hubspot.control("GET", "/gdpr-deletions")
        assert len(gdpr["deleted"]) >= 2
        contacts = await fake_hubspot.control("GET", "/objects/contacts")
        assert [c for c in contacts if "example.com" in json.dumps(c)] == []
        # The enquiries and the booking are kept, without their guest.
        e1 = await website.get("/api/crm/sync/enquiry", params={"enquiryId": "e1"})
        assert e1.json()["syncStatus"] == "synced"
        async with services.sessions() as session:
            kept = list(await session.scalars(select(CrmEnquiry).order_by(CrmEnquiry.enquiry_id)))
            assert [(e.enquiry_id, e.guest_email, e.message) for e in kept] == [
                ("e1", None, "May?"),
                ("e2", None, "June?"),
            ]
            audits = list(await session.scalars(select(Erasure).order_by(Erasure.created_at)))
        owner = await website.get("/api/crm/sync/owner", params={"userId": "user_js"})
        assert owner.json()["syncStatus"] == "deleted"

        # The audit rows: keyed hashes, counts, times; nothing personal.
        expected = [
            hmac.new(HASH_KEY.encode(), e.encode(), hashlib.sha256).hexdigest()
            for e in ("john.smith@example.com", "gus.g@example.com")
        ]
        assert [a.email_hash for a in audits] == expected
        assert all(a.subject is None and a.finished_at is not None for a in audits)
        status = await ops.get(f"/api/crm/erase/{audits[0].id}")
        assert status.json()["counts"] == john.json()["counts"]


async def test_erasure_needs_a_person_and_an_ops_key_but_no_hash_key(db_url) -> None:
    app = create_app(make_settings(db_url))
    async with app.router.lifespan_context(app):
        async with api(app, OPS_KEY) as ops:
            nobody = await ops.post("/api/crm/erase", json={})
            no_key = await ops.post("/api/crm/erase", json={"email": "a@example.com"})
            audit = await ops.get(f"/api/crm/erase/{no_key.json()['erasureId']}")
            bad = await ops.post("/api/crm/erase", json={"email": "not-an-email"})
        async with api(app, SYNC_KEY) as website:
            forbidden = await website.post("/api/crm/erase", json={"email": "a@example.com"})
    assert nobody.status_code == 422
    # Without ERASURE_HASH_KEY the erasure still runs; its audit keeps no (reversible) hash.
    assert no_key.status_code == 200 and no_key.json()["status"] == "completed"
    assert audit.json()["emailHash"] is None
    assert bad.status_code == 422 and bad.json()["field"] == "email"
    assert forbidden.status_code == 403


async def test_a_guest_erased_before_their_enquiry_was_sent_is_never_sent(db_url) -> None:
    from app.providers.mock import Faults

    settings = make_settings(
        db_url,
        erasure_hash_key=HASH_KEY,
        sync_wait_seconds=0.5,
        bulk=BulkSettings(_env_file=None, wait_seconds=30, poll_interval=0.05),  # type: ignore[call-arg]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        mock = app.state.services.providers["mock"]
        async with api(app, SYNC_KEY) as website, api(app, OPS_KEY) as ops:
            await website.post("/api/crm/sync/property", json={"propertyId": "p1", "title": "Barn"})
            # The CRM is busy: the enquiry's create waits (a 429, retried in a minute).
            mock.faults = Faults(mode="rate_limit", count=1, retry_after=60)
            enquiry = {"enquiryId": "e1", "propertyId": "p1", "message": "May?", **GUEST}
            assert (await website.post("/api/crm/sync/enquiry", json=enquiry)).status_code == 202
            mock.faults = Faults()

            erased = await ops.post("/api/crm/erase", json={"email": "gus.g@example.com"})

            assert erased.status_code == 200, erased.text

            async def created_blank() -> None:
                assert mock.store.get(("enquiry", "e1")) == {
                    "enquiryId": "e1",
                    "propertyId": "p1",
                    "message": "May?",
                }

            await eventually(created_blank)
        assert await occurrences(app, GUS) == []
