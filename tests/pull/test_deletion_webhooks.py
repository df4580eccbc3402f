"""HubSpot's contact.deletion, contact.privacyDeletion and contact.merge webhooks: a deleted
contact's lead is marked deleted and no longer listed by default; a privacy deletion erases the
lead and the values stored events carried; a merge folds the leads into the survivor's."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import select

from app.fakes.hubspot_events import contact_event, merge_event
from app.pull.models import Lead, LeadCrmId, PullCursor
from app.webhooks.models import EventStatus, WebhookEvent
from tests.e2e.conftest import serve
from tests.eventually import eventually
from tests.pull.conftest import APP_SECRET, signed
from tests.pull.test_webhook import URL, unsigned_client


async def _deliver(app: Any, events: list[dict[str, Any]]) -> None:
    body = json.dumps(events).encode()
    headers = signed(body, URL, str(int(time.time() * 1000)))
    async with unsigned_client(app) as client:
        answer = await client.post(URL, content=body, headers=headers)
    assert answer.status_code == 200, answer.text


async def _handled(sessions, count: int) -> list[WebhookEvent]:
    async def done() -> list[WebhookEvent]:
        async with sessions() as session:
            rows = list(await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))
        assert len(rows) == count and all(r.status == EventStatus.processed for r in rows), [
            (r.type, r.status, r.reason) for r in rows
        ]
        return rows

    return await eventually(done)


async def _listed(ops: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await ops.get("/api/crm/leads", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["leads"])


async def test_a_deleted_contact_is_marked_deleted_and_listed_only_on_request(
    pulling, sessions
) -> None:
    app, ops, hubspot = pulling
    gone, _ = hubspot.seed_contacts(
        [{"email": "gone@example.com", "firstname": "Gone"}, {"email": "kept@example.com"}]
    )
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})

    await _deliver(app, [contact_event("contact.deletion", gone)])
    [event] = await _handled(sessions, 1)

    assert "1 lead(s) marked deleted" in (event.reason or "")
    assert [lead["email"] for lead in await _listed(ops)] == ["kept@example.com"]
    every = await _listed(ops, includeDeleted="true")
    deleted = next(lead for lead in every if lead["crmId"] == gone)
    assert deleted["deletedAt"] is not None and deleted["firstName"] == "Gone"

    # Restored in HubSpot (and edited): the lead comes back.
    hubspot.edit_contact(gone, {"company": "Back Ltd"})
    await _deliver(app, [contact_event("contact.restore", gone)])
    await _handled(sessions, 2)
    assert sorted(lead["email"] for lead in await _listed(ops)) == [
        "gone@example.com",
        "kept@example.com",
    ]


async def test_a_privacy_deletion_erases_the_lead_and_the_values_events_carried(
    pulling, sessions
) -> None:
    app, ops, hubspot = pulling
    [contact] = hubspot.seed_contacts([{"email": "private@example.com", "phone": "07700900999"}])
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    change = contact_event(
        "contact.propertyChange",
        contact,
        propertyName="email",
        propertyValue="private@example.com",
    )
    await _deliver(app, [change])
    await _handled(sessions, 1)

    # HubSpot sends a privacy deletion together with the ordinary deletion.
    await _deliver(
        app,
        [
            contact_event("contact.privacyDeletion", contact),
            contact_event("contact.deletion", contact),
        ],
    )
    rows = await _handled(sessions, 3)

    async with sessions() as session:
        assert list(await session.scalars(select(Lead))) == []
        assert list(await session.scalars(select(LeadCrmId))) == []
    assert all("private@example.com" not in row.body for row in rows)
    assert all("07700900999" not in row.body for row in rows)
    stored = json.loads(rows[0].body)
    assert stored["objectId"] == int(contact) and stored["propertyValue"] == "[erased]"
    assert await _listed(ops, includeDeleted="true") == []


async def test_a_merge_folds_the_leads_into_the_survivors(pulling, sessions) -> None:
    app, ops, hubspot = pulling
    primary, secondary = hubspot.seed_contacts(
        [
            {"email": "ann@example.com", "firstname": "Ann"},
            {"email": "ann.lee@work.example", "phone": "07700900555", "company": "Lee Lettings"},
        ]
    )
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    assert len(await _listed(ops)) == 2

    await _deliver(app, [merge_event(primary, [secondary])])
    await _handled(sessions, 1)

    [lead] = await _listed(ops)
    assert (lead["crmId"], lead["email"], lead["firstName"]) == (primary, "ann@example.com", "Ann")
    assert (lead["phone"], lead["company"]) == ("+447700900555", "Lee Lettings")
    folded = [x for x in await _listed(ops, includeDeleted="true") if x["id"] != lead["id"]]
    assert [(x["crmId"], x["mergedIntoId"]) for x in folded] == [(secondary, lead["id"])]
    async with sessions() as session:
        links = {link.crm_id: link.lead_id for link in await session.scalars(select(LeadCrmId))}
    assert links == {primary: lead["id"], secondary: lead["id"]}


async def test_the_fake_sends_signed_deletion_events_our_endpoint_accepts(
    pulling, sessions, free_port, fake
) -> None:
    app, ops, hubspot = pulling
    _, fake_url = fake
    [contact] = hubspot.seed_contacts([{"email": "via.fake@example.com"}])
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})

    async with serve(app, free_port()) as url, httpx.AsyncClient(base_url=fake_url) as control:
        sent = await control.post(
            "/_fake/webhooks/contacts",
            json={
                "url": f"{url}/api/webhooks/hubspot",
                "secret": APP_SECRET,
                "type": "contact.deletion",
                "objectId": contact,
            },
        )

    assert sent.status_code == 200 and sent.json()["status"] == 200, sent.text
    await _handled(sessions, 1)
    assert await _listed(ops) == []


async def test_contacts_read_for_webhooks_leave_the_pull_cursor_alone(pulling, sessions) -> None:
    app, ops, hubspot = pulling
    hubspot.seed_contacts([{"email": "early@example.com"}])
    await ops.post("/api/crm/pull", json={"strategy": "overwrite"})
    async with sessions() as session:
        before = (await session.get(PullCursor, "hubspot")).modified_at
    [late] = hubspot.seed_contacts([{"email": "late@example.com"}])

    await _deliver(app, [contact_event("contact.propertyChange", late)])
    await _handled(sessions, 1)

    async with sessions() as session:
        assert (await session.get(PullCursor, "hubspot")).modified_at == before
    assert late in {x["crmId"] for x in await _listed(ops)}  # merged all the same
