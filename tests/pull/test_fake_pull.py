"""The fake HubSpot's pull side over HTTP: seeding and editing contacts, the search cap, list
paging, and webhooks signed as HubSpot signs them."""

from __future__ import annotations

import httpx

from app.fakes.hubspot import send_signed_webhook
from app.pull.webhook import verify_v3
from tests.e2e.conftest import HUBSPOT_TOKEN, serve

AUTH = {"Authorization": f"Bearer {HUBSPOT_TOKEN}"}


def _search(after: int | None = None, limit: int = 200, since: str = "0") -> dict:
    body: dict = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email"],
        "limit": limit,
    }
    if after is not None:
        body["after"] = str(after)
    return body


async def test_seeded_contacts_are_searched_in_order_up_to_the_cap(fake) -> None:
    _, url = fake
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        seeded = await client.post(
            "/_fake/contacts",
            json={
                "contacts": [{"email": f"f{n}@example.com"} for n in range(10_050)],
                "start": "2026-01-01T00:00:00Z",
                "stepSeconds": 1,
            },
        )
        ids = seeded.json()["ids"]
        edited = await client.patch(f"/_fake/contacts/{ids[0]}", json={"properties": {"x": "1"}})
        first = (await client.post("/crm/v3/objects/contacts/search", json=_search())).json()
        last = await client.post("/crm/v3/objects/contacts/search", json=_search(after=9_800))
        past = await client.post("/crm/v3/objects/contacts/search", json=_search(after=9_900))
        later = await client.post(
            "/crm/v3/objects/contacts/search",
            json=_search(since="2026-01-01T02:47:00Z", limit=5),
        )
        listed = (await client.get("/crm/v3/objects/contacts", params={"limit": 2})).json()

    assert len(ids) == 10_050
    assert edited.json()["properties"]["lastmodifieddate"] > "2026"  # moved to now
    assert first["total"] == 10_050 and first["paging"]["next"]["after"] == "200"
    assert [c["properties"]["email"] for c in first["results"][:2]] == [
        "f1@example.com",
        "f2@example.com",
    ]  # f0 was edited: now the newest
    assert set(first["results"][0]["properties"]) == {
        "email",
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
    }
    assert last.status_code == 200 and len(last.json()["results"]) == 200
    assert past.status_code == 400 and past.json()["category"] == "VALIDATION_ERROR"
    assert later.json()["total"] == 31  # f10020..f10049, and f0 edited just now
    assert later.json()["results"][0]["properties"]["email"] == "f10020@example.com"
    assert listed["paging"]["next"]["after"] == ids[2]


async def test_a_webhook_from_the_fake_verifies_with_our_check(free_port) -> None:
    received: list[tuple[str, bytes, dict]] = []

    async def app(scope, receive, send) -> None:  # a bare receiver, to capture the request
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        received.append((scope["path"], body, headers))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async with serve(app, free_port()) as url:
        target = f"{url}/api/webhooks/hubspot"
        status, _ = await send_signed_webhook(target, "s3cret", [{"eventId": 1}])

    assert status == 200
    [(_, body, headers)] = received
    verify_v3("s3cret", "POST", target, body, headers)
