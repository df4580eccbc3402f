"""The internal CRM's read API as ops use it: contacts, enquiries, notes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.providers.internal.models import CrmActivity, CrmInteraction
from app.providers.internal.provider import InternalProvider
from app.records import Kind
from tests.crm.test_seed_flows import ENQUIRY, OWNER, PROPERTY, sync
from tests.providers.test_internal import delivery


@pytest.fixture
async def seeded(client) -> dict[str, Any]:
    """An owner with an approved property and one enquiry from a guest, via the sync API."""
    owner = await sync(client, "owner", OWNER)
    prop = await sync(client, "property", PROPERTY)
    enquiry = await sync(client, "enquiry", ENQUIRY)
    return {"owner": owner["crmId"], "property": prop["crmId"], "enquiry": enquiry["crmId"]}


async def test_contacts_list_filters_by_type_and_status(ops, seeded) -> None:
    everyone = (await ops.get("/api/crm/contacts")).json()
    assert everyone["success"] is True
    assert [c["type"] for c in everyone["contacts"]] == ["guest", "owner"]  # newest first
    assert everyone["nextCursor"] is None

    owners = (await ops.get("/api/crm/contacts", params={"type": "owner"})).json()["contacts"]
    assert [(c["id"], c["userId"], c["email"]) for c in owners] == [
        (seeded["owner"], "user_123abc", "john@example.com")
    ]
    active = (await ops.get("/api/crm/contacts", params={"status": "active"})).json()
    assert [c["email"] for c in active["contacts"]] == ["gus@example.com"]
    pending_guests = await ops.get(
        "/api/crm/contacts", params={"type": "guest", "status": "pending"}
    )
    assert pending_guests.json()["contacts"] == []


async def test_search_matches_part_of_the_name_or_email(ops, seeded) -> None:
    for search, emails in [
        ("gus", ["gus@example.com"]),
        ("SMITH", ["john@example.com"]),
        ("example.COM", ["gus@example.com", "john@example.com"]),
        ("n Sm", ["john@example.com"]),
        ("%", []),  # wildcards are searched for, not obeyed
        ("_", []),
        ("nobody", []),
    ]:
        found = (await ops.get("/api/crm/contacts", params={"search": search})).json()
        assert sorted(c["email"] for c in found["contacts"]) == emails, search


async def test_cursor_pagination_walks_every_contact_once(ops, services) -> None:
    await InternalProvider(services.sessions).deliver(
        Kind.owner,
        [delivery(Kind.owner, {"userId": f"u{i}", "name": f"Owner {i}"}) for i in range(5)],
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await ops.get("/api/crm/contacts", params=params)).json()
        seen += [c["userId"] for c in page["contacts"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == [f"u{i}" for i in range(5)]


async def test_bad_list_parameters_answer_422_naming_them(ops) -> None:
    for params, field in [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # valid base64 of [1,2]: still not ours
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"type": "admin"}, "type"),
        ({"status": "gone"}, "status"),
    ]:
        response = await ops.get("/api/crm/contacts", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["success"] is False
        assert response.json()["field"] == field


async def test_a_contact_in_detail_by_crm_id_or_website_id(ops, seeded) -> None:
    by_crm_id = await ops.get(f"/api/crm/contacts/{seeded['owner']}")
    by_user_id = await ops.get("/api/crm/contacts/user_123abc")
    assert by_crm_id.status_code == by_user_id.status_code == 200
    detail = by_crm_id.json()
    assert detail == by_user_id.json()
    assert detail["contact"]["id"] == seeded["owner"]
    assert detail["contact"]["createdAt"].endswith("Z")  # ISO 8601, UTC
    [prop] = detail["properties"]
    assert (prop["id"], prop["propertyId"], prop["linkStatus"], prop["enquiryCount"]) == (
        seeded["property"],
        "123",
        "active",
        1,
    )
    [enquiry] = detail["enquiries"]
    assert (enquiry["id"], enquiry["propertyId"], enquiry["propertyTitle"]) == (
        seeded["enquiry"],
        "123",
        "Sea View Barn",
    )
    assert detail["membership"] is None
    assert detail["notes"] == []
    assert {a["entityType"] for a in detail["activity"]} == {"contact", "property", "enquiry"}

    guest = (await ops.get(f"/api/crm/contacts/{enquiry['guestContactId']}")).json()
    assert guest["contact"]["type"] == "guest"
    assert [e["id"] for e in guest["enquiries"]] == [seeded["enquiry"]]
    assert [i["content"] for i in guest["interactions"]] == ["Is it free?"]


async def test_an_unknown_contact_is_404(ops) -> None:
    response = await ops.get("/api/crm/contacts/nobody")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": "contact nobody is not in the internal CRM",
    }


async def test_a_note_added_to_a_contact(ops, seeded) -> None:
    response = await ops.post(
        f"/api/crm/contacts/{seeded['owner']}/notes",
        json={
            "content": "  Call back about gold  ",
            "noteType": "follow_up",
            "priority": "high",
            "reminderDate": "2026-12-01T09:00:00+01:00",
        },
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert (note["contactId"], note["content"], note["noteType"], note["priority"]) == (
        seeded["owner"],
        "Call back about gold",
        "follow_up",
        "high",
    )
    assert note["reminderDate"] == "2026-12-01T08:00:00Z"
    assert note["createdBy"] == "ops"  # the API key's name
    detail = (await ops.get(f"/api/crm/contacts/{seeded['owner']}")).json()
    assert [n["id"] for n in detail["notes"]] == [note["id"]]


async def test_a_bad_note_is_422_naming_the_field(ops, seeded) -> None:
    for body, field in [
        ({}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "x", "priority": "whenever"}, "priority"),
        ({"content": "x", "noteType": "gossip"}, "noteType"),
        ({"content": "x", "reminderDate": "soon"}, "reminderDate"),
        ({"content": "x", "colour": "red"}, "colour"),
    ]:
        response = await ops.post(f"/api/crm/contacts/{seeded['owner']}/notes", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field
    detail = (await ops.get(f"/api/crm/contacts/{seeded['owner']}")).json()
    assert detail["notes"] == []  # nothing half-written


async def test_a_note_for_an_unknown_contact_is_404(ops) -> None:
    response = await ops.post("/api/crm/contacts/nobody/notes", json={"content": "hi"})
    assert response.status_code == 404


async def test_enquiries_filter_by_status(ops, seeded) -> None:
    new = (await ops.get("/api/crm/enquiries", params={"status": "new"})).json()
    [enquiry] = new["enquiries"]
    assert (enquiry["id"], enquiry["enquiryId"], enquiry["status"]) == (
        seeded["enquiry"],
        "enq_1",
        "new",
    )
    assert enquiry["nextStatuses"] == ["contacted", "qualified", "converted", "lost"]
    assert enquiry["guestEmail"] == "gus@example.com"
    contacted = (await ops.get("/api/crm/enquiries", params={"status": "contacted"})).json()
    assert contacted["enquiries"] == []
    mine = await ops.get("/api/crm/enquiries", params={"ownerContactId": seeded["owner"]})
    assert [e["id"] for e in mine.json()["enquiries"]] == [seeded["enquiry"]]
    bad = await ops.get("/api/crm/enquiries", params={"status": "won"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"


async def test_an_enquiry_moves_forward_with_its_change_logged(ops, seeded, sessions) -> None:
    url = f"/api/crm/enquiries/{seeded['enquiry']}"
    moved = await ops.put(url, json={"status": "contacted", "note": "Rang them"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "contacted"
    assert moved.json()["nextStatuses"] == ["qualified", "converted", "lost"]
    assert moved.json()["statusChangedAt"].endswith("Z")
    async with sessions() as session:
        logged = await session.scalar(
            select(CrmActivity).where(CrmActivity.activity_type == "status_changed")
        )
        told = await session.scalar(
            select(CrmInteraction).where(CrmInteraction.type == "status_change")
        )
    assert logged is not None
    assert (logged.entity_type, logged.entity_id, logged.contact_id) == (
        "enquiry",
        seeded["enquiry"],
        seeded["owner"],
    )
    assert (logged.meta, logged.details, logged.performed_by) == (
        {"from": "new", "to": "contacted", "enquiryId": "enq_1"},
        "Rang them",
        "ops",
    )
    assert told is not None and told.crm_enquiry_id == seeded["enquiry"]

    # By the website's id too; the same status again changes nothing.
    same = await ops.put("/api/crm/enquiries/enq_1", json={"status": "contacted"})
    assert same.status_code == 200 and same.json()["status"] == "contacted"
    async with sessions() as session:
        changes = list(
            await session.scalars(
                select(CrmActivity.id).where(CrmActivity.activity_type == "status_changed")
            )
        )
    assert len(changes) == 1


async def test_a_backward_move_is_409_with_the_allowed_ones(ops, seeded) -> None:
    url = f"/api/crm/enquiries/{seeded['enquiry']}"
    assert (await ops.put(url, json={"status": "qualified"})).status_code == 200
    back = await ops.put(url, json={"status": "contacted"})
    assert back.status_code == 409
    assert back.json() == {
        "success": False,
        "error": "enquiry enq_1 is qualified: it cannot go to contacted; allowed: converted, lost",
        "current": "qualified",
        "allowed": ["converted", "lost"],
    }
    assert (await ops.put(url, json={"status": "converted"})).status_code == 200
    final = await ops.put(url, json={"status": "lost"})
    assert final.status_code == 409
    assert final.json()["allowed"] == []
    assert "converted is final" in final.json()["error"]


async def test_an_unknown_enquiry_is_404_and_a_bad_status_422(ops, seeded) -> None:
    unknown = await ops.put("/api/crm/enquiries/nope", json={"status": "contacted"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "enquiry nope is not in the internal CRM"
    bad = await ops.put(f"/api/crm/enquiries/{seeded['enquiry']}", json={"status": "won"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    missing = await ops.put(f"/api/crm/enquiries/{seeded['enquiry']}", json={})
    assert missing.status_code == 422 and missing.json()["field"] == "status"


async def test_the_read_api_is_for_ops_keys_only(client, anonymous) -> None:
    async with anonymous() as nobody:
        for method, path in [
            ("GET", "/api/crm/contacts"),
            ("GET", "/api/crm/contacts/x"),
            ("POST", "/api/crm/contacts/x/notes"),
            ("GET", "/api/crm/enquiries"),
            ("PUT", "/api/crm/enquiries/x"),
            ("GET", "/api/crm/stats"),
        ]:
            assert (await client.request(method, path, json={})).status_code == 403, path
            assert (await nobody.request(method, path, json={})).status_code == 401, path
