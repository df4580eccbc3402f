"""The HubSpot pull source against respx: the search it sends, paging with `after`, and the
re-anchoring past the result cap (shrunk here to 4 so the story fits on a page)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx

from app.providers.base import ProviderError
from app.providers.hubspot import spec as hubspot_spec
from app.providers.hubspot.provider import HubSpotProvider
from app.providers.ratelimit import LocalRateLimiter
from app.pull import hubspot as source_module
from app.pull.hubspot import HubSpotContacts
from app.settings import HubSpotSettings

BASE = "https://api.hubapi.com"


def _contact(cid: int, ms: int) -> dict:
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return {"id": str(cid), "properties": {"lastmodifieddate": stamp.replace("+00:00", "Z")}}


class Search:
    """HubSpot's search over a fixed list, sorted by lastmodifieddate, capped at `cap`."""

    def __init__(self, contacts: list[dict], cap: int) -> None:
        self.contacts, self.cap, self.bodies = contacts, cap, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        checked = {k: v for k, v in body.items() if k != "sorts"}
        assert hubspot_spec.errors("POST", request.url.path, checked) == []
        since = int(body["filterGroups"][0]["filters"][0]["value"])
        found = [
            c
            for c in self.contacts
            if datetime.fromisoformat(c["properties"]["lastmodifieddate"]).timestamp() * 1000
            >= since
        ]
        after, limit = int(body.get("after", 0)), body["limit"]
        if after + limit > self.cap:
            return httpx.Response(400, json={"status": "error", "message": "past the cap"})
        answer: dict = {"total": len(found), "results": found[after : after + limit]}
        if after + limit < len(found):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return httpx.Response(200, json=answer)


@pytest.fixture
async def contacts_source(monkeypatch):
    monkeypatch.setattr(source_module, "SEARCH_CAP", 4)
    settings = HubSpotSettings(_env_file=None, access_token="pat-test")  # type: ignore[call-arg]
    provider = HubSpotProvider(settings, LocalRateLimiter("pull-test", 1000))
    yield HubSpotContacts(provider.client, page_size=2)
    await provider.aclose()


async def test_pages_past_the_cap_by_re_anchoring_and_never_repeats(contacts_source) -> None:
    # Ten contacts; three share the instant 5000 across a re-anchoring boundary.
    stamps = [1000, 2000, 3000, 5000, 5000, 5000, 6000, 7000, 8000, 9000]
    search = Search([_contact(n + 1, ms) for n, ms in enumerate(stamps)], cap=4)
    with respx.mock(base_url=BASE) as mock:
        mock.post("/crm/v3/objects/contacts/search").mock(side_effect=search)
        since = datetime.fromtimestamp(0.5, UTC)
        pages = [page async for page in contacts_source.changed_since(since)]

    ids = [c["id"] for page in pages for c in page]
    assert ids == [str(n) for n in range(1, 11)]
    # Page 1-2 from 500; the next `after` (4) would reach the cap, so again from 5000 (the
    # 5000s already read are dropped), then from 6000, which ends within the cap.
    assert [b.get("after") for b in search.bodies] == [None, "2", None, "2", None, "2"]
    anchors = [b["filterGroups"][0]["filters"][0]["value"] for b in search.bodies]
    assert anchors == ["500", "500", "5000", "5000", "6000", "6000"]
    first = search.bodies[0]
    assert first["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert first["filterGroups"][0]["filters"][0]["operator"] == "GTE"
    assert "phone" in first["properties"] and "email" in first["properties"]


async def test_more_contacts_at_one_instant_than_the_cap_is_an_error_not_a_loop(
    contacts_source,
) -> None:
    search = Search([_contact(n, 5000) for n in range(1, 8)], cap=4)
    with respx.mock(base_url=BASE) as mock:
        mock.post("/crm/v3/objects/contacts/search").mock(side_effect=search)
        with pytest.raises(ProviderError, match="share one modification time"):
            async for _ in contacts_source.changed_since(datetime.fromtimestamp(5, UTC)):
                pass
    assert len(search.bodies) == 2


async def test_batch_read_asks_for_the_named_contacts_in_hundreds(contacts_source) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert hubspot_spec.errors("POST", request.url.path, body) == []
        return httpx.Response(
            200, json={"status": "COMPLETE", "results": [{"id": i["id"]} for i in body["inputs"]]}
        )

    with respx.mock(base_url=BASE) as mock:
        route = mock.post("/crm/v3/objects/contacts/batch/read").mock(side_effect=answer)
        found = await contacts_source.read([str(n) for n in range(150)] + ["1"])
    assert len(found) == 150 and route.call_count == 2
