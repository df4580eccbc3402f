"""Merging pulled contacts: dedupe by CRM id, E.164 phone, email; strategies; conflicts; links
to our own owners; preview changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.db import transaction, utcnow
from app.models import LinkStatus, ProviderLink, Record
from app.pull.models import Lead, LeadCrmId, PullCursor, PullRun


async def _count(sessions, model) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def _leads(sessions) -> list[Lead]:
    async with sessions() as session:
        return list(await session.scalars(select(Lead).order_by(Lead.id)))


async def test_two_formats_of_one_uk_number_are_one_pulled_contact(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts(
        [
            {"firstname": "Ann", "lastname": "Lee", "phone": "07700 900123"},
            {"firstname": "Ann", "lastname": "Lee", "phone": "+44 7700 900123", "email": "A@X.com"},
        ]
    )

    answer = await ops.post("/api/crm/pull", json={"strategy": "overwrite"})

    assert answer.status_code == 200
    body = answer.json()
    assert (body["created"], body["updated"], body["skipped"]) == (1, 1, 0)
    [lead] = await _leads(sessions)
    assert (lead.phone, lead.email, lead.first_name) == ("+447700900123", "a@x.com", "Ann")
    assert await _count(sessions, LeadCrmId) == 2  # both HubSpot ids lead to it


async def test_email_in_another_case_is_the_same_person(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts([{"email": "Bob@Example.com", "firstname": "Bob"}])
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    hubspot.seed_contacts([{"email": "bob@example.COM", "company": "Bob Ltd"}])

    body = (await ops.post("/api/crm/pull", json={"strategy": "append"})).json()

    assert (body["created"], body["updated"]) == (0, 1)
    [lead] = await _leads(sessions)
    assert (lead.email, lead.company, lead.first_name) == ("bob@example.com", "Bob Ltd", "Bob")


async def test_preview_reports_the_same_counts_and_changes_no_row(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts(
        [{"email": f"p{n}@example.com", "firstname": f"P{n}"} for n in range(5)]
        + [{"email": "p0@example.com", "phone": "+447700900555"}]
    )

    preview = (await ops.post("/api/crm/pull", json={"strategy": "preview"})).json()

    assert (preview["created"], preview["updated"], preview["skipped"]) == (5, 1, 0)
    assert await _count(sessions, Lead) == 0
    assert await _count(sessions, LeadCrmId) == 0
    assert await _count(sessions, PullCursor) == 0
    real = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()
    assert (real["created"], real["updated"], real["skipped"]) == (5, 1, 0)
    assert await _count(sessions, Lead) == 5


async def test_append_keeps_local_values_and_overwrite_replaces_them(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    [contact] = hubspot.seed_contacts([{"email": "c@example.com", "company": "Old Ltd"}])
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    hubspot.edit_contact(contact, {"company": "New Ltd", "lifecyclestage": "customer"})

    append = (await ops.post("/api/crm/pull", json={"strategy": "append"})).json()
    [lead] = await _leads(sessions)
    assert append["updated"] == 1  # the empty stage was filled
    assert (lead.company, lead.crm_stage) == ("Old Ltd", "customer")

    hubspot.edit_contact(contact, {"company": "Newer Ltd"})
    overwrite = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()
    [lead] = await _leads(sessions)
    assert overwrite["updated"] == 1
    assert lead.company == "Newer Ltd"

    again = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()
    assert again["updated"] == 0 and again["skipReasons"] == {"unchanged": again["skipped"]}


async def test_a_contact_matching_two_leads_is_a_reported_conflict(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts(
        [
            {"firstname": "Phone", "phone": "+447700900777"},
            {"firstname": "Mail", "email": "m@example.com"},
        ]
    )
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    [both] = hubspot.seed_contacts([{"phone": "07700 900777", "email": "m@example.com"}])

    body = (await ops.post("/api/crm/pull", json={"strategy": "overwrite"})).json()

    assert body["created"] == 0 and body["updated"] == 0
    [conflict] = body["conflicts"]
    assert conflict["crmId"] == both
    leads = await _leads(sessions)
    assert conflict["byPhone"] == [str(leads[0].id)] and conflict["byEmail"] == [str(leads[1].id)]
    assert {"crmId": both, "reason": "conflict: matches more than one lead"} in body["skips"]
    assert [(lead.phone, lead.email) for lead in leads] == [
        ("+447700900777", None),
        (None, "m@example.com"),
    ]


async def test_contacts_without_name_email_or_phone_are_skipped_with_the_reason(
    pulling, sessions
) -> None:
    _, ops, hubspot = pulling
    [empty] = hubspot.seed_contacts([{"company": "Nameless Ltd"}])

    body = (await ops.post("/api/crm/pull", json={})).json()

    assert body["skips"] == [{"crmId": empty, "reason": "no name, email or phone"}]
    assert await _count(sessions, Lead) == 0


async def test_a_contact_we_pushed_is_linked_to_our_owner(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    [crm_id] = hubspot.seed_contacts([{"email": "owner@example.com", "firstname": "Olive"}])
    async with transaction(sessions) as session:
        record = Record(
            kind="owner",
            external_id="user_42",
            data={"userId": "user_42"},
            content_hash="x",
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(record)
        await session.flush()
        session.add(
            ProviderLink(
                record_id=record.id, provider="hubspot", crm_id=crm_id, status=LinkStatus.synced
            )
        )

    await ops.post("/api/crm/pull", json={})

    [lead] = await _leads(sessions)
    assert lead.record_id == "user_42"
    listed = (await ops.get("/api/crm/leads", params={"userId": "user_42"})).json()
    assert [row["crmId"] for row in listed["leads"]] == [crm_id]


async def test_the_cursor_is_read_back_with_an_overlap(pulling, sessions) -> None:
    _, ops, hubspot = pulling
    newest = datetime.now(UTC) - timedelta(days=2)
    hubspot.seed_contacts([{"email": "first@example.com"}], start=newest)
    await ops.post("/api/crm/pull", json={})
    # Edits HubSpot's search index shows late: 3 minutes before the cursor is inside the
    # 5-minute overlap, 10 minutes before is not.
    hubspot.seed_contacts([{"email": "late@example.com"}], start=newest - timedelta(minutes=3))
    hubspot.seed_contacts([{"email": "lost@example.com"}], start=newest - timedelta(minutes=10))

    body = (await ops.post("/api/crm/pull", json={})).json()

    assert (body["fetched"], body["created"], body["skipReasons"]) == (2, 1, {"unchanged": 1})
    assert {lead.email for lead in await _leads(sessions)} == {
        "first@example.com",
        "late@example.com",
    }
    async with sessions() as session:
        runs = list(await session.scalars(select(PullRun).order_by(PullRun.id)))
        cursor = await session.get(PullCursor, "hubspot")
    assert [(r.trigger, r.status, r.created) for r in runs] == [("api", "done", 1)] * 2
    assert abs((cursor.modified_at - newest).total_seconds()) < 0.01  # never moved back


async def test_bad_requests_name_the_field(pulling) -> None:
    _, ops, _ = pulling
    wrong = await ops.post("/api/crm/pull", json={"strategy": "merge"})
    assert wrong.status_code == 422 and "strategy" in wrong.json()["error"]
    other = await ops.post("/api/crm/pull", json={"provider": "treadsoft"})
    assert other.status_code == 422 and "provider" in other.json()["error"]
    phone = await ops.get("/api/crm/leads", params={"phone": "not a phone"})
    assert phone.status_code == 422 and "phone" in phone.json()["error"]
    limit = await ops.get("/api/crm/leads", params={"limit": 0})
    assert limit.status_code == 422 and "limit" in limit.json()["error"]


async def test_leads_are_listed_with_filters_and_pages(pulling) -> None:
    _, ops, hubspot = pulling
    hubspot.seed_contacts(
        [
            {"email": f"l{n}@example.com", "phone": f"+4477009001{n:02d}", "lifecyclestage": s}
            for n, s in enumerate(["lead", "customer", "lead", "lead"])
        ]
    )
    await ops.post("/api/crm/pull", json={})

    first = (await ops.get("/api/crm/leads", params={"limit": 2})).json()
    second = (
        await ops.get("/api/crm/leads", params={"limit": 2, "cursor": first["nextCursor"]})
    ).json()
    assert [r["email"] for r in first["leads"] + second["leads"]] == [
        f"l{n}@example.com" for n in (3, 2, 1, 0)
    ]
    assert second["nextCursor"] is None
    stage = (await ops.get("/api/crm/leads", params={"crmStage": "customer"})).json()
    assert [r["email"] for r in stage["leads"]] == ["l1@example.com"]
    phone = (await ops.get("/api/crm/leads", params={"phone": "07700 900102"})).json()
    assert [r["email"] for r in phone["leads"]] == ["l2@example.com"]
    found = (await ops.get("/api/crm/leads", params={"q": "L3@"})).json()
    assert [r["email"] for r in found["leads"]] == ["l3@example.com"]
