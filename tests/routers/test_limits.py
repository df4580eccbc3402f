"""The request body limit (MAX_BODY_SIZE) and the 405 answer's Allow header."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import pytest

from app.settings import Settings
from tests.conftest import make_settings

LIMIT = 64 * 1024


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, max_body_size=LIMIT)


def owner_of_size(size: int) -> bytes:
    padding = size - len(json.dumps({"userId": "u1", "notes": ""}))
    return json.dumps({"userId": "u1", "notes": "x" * padding}).encode()


async def test_a_body_past_the_limit_is_a_413_and_nothing_is_stored(client) -> None:
    body = owner_of_size(LIMIT + 1)
    response = await client.post(
        "/api/crm/sync/owner", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    answer = response.json()
    assert answer["success"] is False and answer["field"] == "body"
    assert f"{LIMIT:,}" in answer["error"]
    assert (await client.get("/api/crm/sync/owner", params={"userId": "u1"})).status_code == 404


async def test_a_body_at_the_limit_is_taken(client) -> None:
    response = await client.post(
        "/api/crm/sync/owner",
        content=owner_of_size(LIMIT),
        headers={"Content-Type": "application/json", "Prefer": "respond-async"},
    )
    assert response.status_code == 202, response.text


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(client) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'[{"userId":"u1","notes":"'
        for _ in range(2 * LIMIT // 1024):
            sent += 1024
            yield b"x" * 1024
        yield b'"}]'

    response = await client.post(
        "/api/crm/sync/owner/batch",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["field"] == "body"
    assert (await client.get("/api/crm/sync/owner", params={"userId": "u1"})).status_code == 404


async def test_a_batch_and_a_webhook_are_limited_too(client, anonymous) -> None:
    big = b"[" + b" " * LIMIT + b"]"
    batch = await client.post("/api/crm/sync/owner/batch", content=big)
    assert batch.status_code == 413
    async with anonymous() as stranger:
        stripe = await stranger.post("/api/webhooks/stripe", content=big)
    assert stripe.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/crm/sync/owner", {"GET", "HEAD", "POST", "DELETE"}),
        ("PATCH", "/api/crm/sync/property", {"GET", "HEAD", "POST", "DELETE"}),
        ("GET", "/api/crm/sync/owner/batch", {"POST"}),
        ("POST", "/api/crm/mock/faults", {"PUT", "DELETE"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
        ("DELETE", "/api/webhooks/events/1", {"GET", "HEAD"}),
    ],
)
async def test_405_lists_every_method_the_path_takes(
    ops, method: str, path: str, allowed: set[str]
) -> None:
    response = await ops.request(method, path)
    assert response.status_code == 405, response.text
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert response.json()["success"] is False


# -- compressed bodies ---------------------------------------------------------------------------
# Bodies are read as they come: a gzip body was answered "not UTF-8 text", and a plain one labelled
# gzip was taken as if the label were not there. RFC 9110 15.5.16: 415, naming what is taken.


@pytest.mark.parametrize("compress", [True, False])
async def test_a_body_with_a_content_encoding_is_a_415_and_nothing_is_stored(
    client, compress: bool
) -> None:
    raw = json.dumps({"userId": "gz1", "name": "Ann"}).encode()
    response = await client.post(
        "/api/crm/sync/owner",
        content=gzip.compress(raw) if compress else raw,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 415, response.text
    assert response.json()["field"] == "Content-Encoding"
    assert response.headers["accept-encoding"] == "identity"
    assert (await client.get("/api/crm/sync/owner", params={"userId": "gz1"})).status_code == 404


async def test_content_encoding_identity_is_a_body_as_sent(client) -> None:
    response = await client.post(
        "/api/crm/sync/owner",
        json={"userId": "id1", "name": "Ann"},
        headers={"Content-Encoding": "identity"},
    )
    assert response.status_code == 200, response.text
