"""HEAD on every path that takes GET: the GET's status and headers, no body (RFC 9110 9.3.2).
Load balancers and uptime checks probe with HEAD; a 405 there reads as "down"."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/api/crm/status"])
async def test_head_answers_like_get_without_a_body(ops, path: str) -> None:
    got = await ops.get(path)
    head = await ops.head(path)
    assert head.status_code == got.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


async def test_head_of_a_record_follows_its_get(client) -> None:
    unknown = await client.head("/api/crm/sync/owner", params={"userId": "nobody"})
    assert unknown.status_code == 404
    assert unknown.content == b""
    await client.post("/api/crm/sync/owner", json={"userId": "u1", "name": "Ann"})
    known = await client.head("/api/crm/sync/owner", params={"userId": "u1"})
    assert known.status_code == 200
    assert known.content == b""
    assert int(known.headers["content-length"]) > 0  # the length the GET's body would have


async def test_head_still_needs_the_key_get_needs(anonymous) -> None:
    async with anonymous() as stranger:
        response = await stranger.head("/api/crm/status")
    assert response.status_code == 401
    assert response.content == b""


async def test_head_where_no_get_is_served_is_a_405_naming_what_is(client) -> None:
    response = await client.head("/api/crm/sync/owner/batch")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""


async def test_allow_lists_head_beside_get(client) -> None:
    response = await client.put("/healthz")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}
