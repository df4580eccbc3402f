"""GET /api/crm/stats against counts taken straight from the tables."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, text

from app.db import UTCDateTime, utcnow
from app.models import SyncLog
from app.providers.mock import Faults
from tests.crm.test_seed_flows import sync


async def _grouped(session: Any, sql: str, **params: Any) -> dict[str, int]:
    stmt = text(sql)
    if "since" in params:
        stmt = stmt.bindparams(bindparam("since", type_=UTCDateTime()))
    rows = await session.execute(stmt, params)
    return {str(key) if key is not None else "none": int(n) for key, n in rows}


async def _count(session: Any, table: str) -> int:
    return int(await session.scalar(text(f"SELECT count(*) FROM {table}")))


async def _direct(sessions: Any) -> dict[str, Any]:
    """The same figures in plain SQL, written without the service's code."""
    since = utcnow() - timedelta(hours=24)
    async with sessions() as s:
        by_type = await _grouped(s, "SELECT type, count(*) FROM crm_contacts GROUP BY type")
        enquiries = await _grouped(s, "SELECT status, count(*) FROM crm_enquiries GROUP BY status")
        failed = await _grouped(
            s,
            "SELECT provider, count(*) FROM sync_log WHERE status = 'failed' "
            "AND created_at >= :since GROUP BY provider",
            since=since,
        )
        total_enquiries = await _count(s, "crm_enquiries")
        return {
            "contacts": {
                "total": await _count(s, "crm_contacts"),
                "byType": by_type,
                "byStatus": await _grouped(
                    s, "SELECT status, count(*) FROM crm_contacts GROUP BY status"
                ),
            },
            "properties": {
                "total": await _count(s, "crm_properties"),
                "byListingStatus": await _grouped(
                    s, "SELECT listing_status, count(*) FROM crm_properties GROUP BY 1"
                ),
                "linksByStatus": await _grouped(
                    s, "SELECT link_status, count(*) FROM crm_property_links GROUP BY 1"
                ),
            },
            "enquiries": {
                "total": total_enquiries,
                "byStatus": enquiries,
                "conversionRate": round(enquiries.get("converted", 0) / total_enquiries, 4),
            },
            "bookings": {"total": await _count(s, "crm_bookings")},
            "memberships": {
                "total": await _count(s, "crm_memberships"),
                "byStatus": await _grouped(
                    s, "SELECT status, count(*) FROM crm_memberships GROUP BY status"
                ),
                "byTier": await _grouped(
                    s, "SELECT plan_tier, count(*) FROM crm_memberships GROUP BY plan_tier"
                ),
            },
            "notes": {"total": await _count(s, "crm_notes")},
            "interactions": {"total": await _count(s, "crm_interactions")},
            "activity": {"total": await _count(s, "crm_activity_log")},
            "sync": {"failedLast24h": sum(failed.values()), "failedLast24hByProvider": failed},
        }


async def test_stats_equal_counts_taken_from_the_tables(
    client, ops, mock, services, sessions
) -> None:
    await sync(client, "owner", {"userId": "u1", "name": "Ann", "status": "active"})
    await sync(client, "owner", {"userId": "u2", "name": "Bob", "status": "suspended"})
    await sync(client, "property", {"propertyId": "p1", "ownerId": "u1", "status": "approved"})
    await sync(client, "property", {"propertyId": "p2", "ownerId": "u2", "status": "pending"})
    enquiries = {}
    for enquiry_id, prop, email in (("e1", "p1", "g1@x.com"), ("e2", "p1", "g2@x.com"),
                                    ("e3", "p2", "g1@x.com")):  # fmt: skip
        body = {"enquiryId": enquiry_id, "propertyId": prop, "guestEmail": email}
        enquiries[enquiry_id] = (await sync(client, "enquiry", body))["crmId"]
    for enquiry_id, status in (("e1", "converted"), ("e2", "lost"), ("e3", "contacted")):
        moved = await ops.put(
            f"/api/crm/enquiries/{enquiries[enquiry_id]}", json={"status": status}
        )
        assert moved.status_code == 200
    await sync(client, "booking", {"bookingId": "b1", "propertyId": "p1", "guestEmail": "g3@x.com"})
    await sync(client, "membership", {"userId": "u1", "planTier": "gold", "status": "active"})
    await sync(client, "membership", {"userId": "u2", "planTier": "silver", "status": "past_due"})
    assert (await ops.post("/api/crm/contacts/u1/notes", json={"content": "hi"})).status_code == 201
    # A delivery the mock rejects (logged as failed), and an old failure outside the 24 hours.
    mock.faults = Faults(mode="reject", count=1)
    rejected = await client.post("/api/crm/sync/owner", json={"userId": "u3", "name": "Cy"})
    assert rejected.status_code == 502
    async with services.sessions() as session, session.begin():
        session.add(
            SyncLog(
                created_at=utcnow() - timedelta(hours=25),
                provider="internal",
                entity_type="owner",
                entity_id="old",
                action="upsert",
                status="failed",
                error="long ago",
            )
        )

    response = await ops.get("/api/crm/stats")
    assert response.status_code == 200
    stats = response.json()
    assert stats["generatedAt"].endswith("Z")
    direct = await _direct(sessions)
    assert {k: v for k, v in stats.items() if k in direct} == direct

    # And the figures are the story above, not just equal to each other.
    assert stats["contacts"]["byType"] == {"owner": 3, "guest": 3}
    assert stats["enquiries"]["byStatus"] == {"converted": 1, "lost": 1, "contacted": 1}
    assert stats["enquiries"]["conversionRate"] == 0.3333
    assert stats["memberships"]["byTier"] == {"gold": 1, "silver": 1}
    assert stats["properties"]["linksByStatus"] == {"active": 1, "pending": 1}
    assert stats["sync"] == {"failedLast24h": 1, "failedLast24hByProvider": {"mock": 1}}


async def test_stats_of_an_empty_crm(ops) -> None:
    stats = (await ops.get("/api/crm/stats")).json()
    assert stats["contacts"] == {"total": 0, "byType": {"owner": 0, "guest": 0}, "byStatus": {}}
    assert stats["enquiries"] == {"total": 0, "byStatus": {}, "conversionRate": 0.0}
    assert stats["sync"] == {"failedLast24h": 0, "failedLast24hByProvider": {}}
