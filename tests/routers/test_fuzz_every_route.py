"""No input makes any route answer 5xx (issue 11, acceptance 2): hypothesis sends every operation
of the OpenAPI document arbitrary JSON bodies (lone surrogates included, as JSON escapes), raw
bytes, nesting up to thousands deep, and arbitrary path and query strings (NUL, invalid UTF-8,
huge numbers), with an ops key, and signed where a webhook would check a signature."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from app.fakes.hubspot import sign_v3
from app.settings import HubSpotSettings, Settings
from tests.conftest import make_settings
from tests.webhooks.conftest import sign

STRIPE_SECRET = "whsec_test_0123456789abcdef"
HUBSPOT_SECRET = "hubspot-app-secret-7c1d2e3f"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(
        db_url,
        crm_providers="mock,internal",
        stripe_webhook_secret=STRIPE_SECRET,
        hubspot=HubSpotSettings(_env_file=None, app_secret=HUBSPOT_SECRET),  # type: ignore[call-arg]
        sync_wait_seconds=0,
    )


# Text of every kind: any code point, lone surrogates included, NUL, long digit strings.
texts = st.text(st.characters(codec=None), max_size=20) | st.sampled_from(
    ["\x00", "\ud800", "9223372036854775808", "-1", "1e400", "NaN", "9999-12-31T23:59:59-14:00"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30])
    | st.floats()  # NaN and Infinity included: json.dumps writes them
    | texts
)
FIELDS = [
    "userId", "propertyId", "enquiryId", "bookingId", "customFields", "email", "phone", "name",
    "bedrooms", "pricePerNight", "price", "status", "syncType", "entityId", "provider",
    "content", "reminderDate", "mode", "count", "strategy", "id", "object", "type", "created",
    "data", "eventId", "subscriptionType", "objectId", "note", "signupDate",
]  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(texts | st.sampled_from(FIELDS), inner)
    ),
    max_leaves=15,
)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([40, 200, 990, 1000, 3000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = '"x"' if opener == "[" else "1"
    core = opener * depth + inner + closer * depth
    if draw(st.booleans()):  # inside a record, or a batch of them
        core = '{"userId":"u1","propertyId":"p1","customFields":' + core + "}"
        core = f"[{core}]" if draw(st.booleans()) else core
    return core.encode()


def dumped(value: Any) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape \ud800, as a hostile client would.
    return json.dumps(value, ensure_ascii=True).encode()


bodies = (
    json_values.map(dumped)
    | nested()
    | st.binary(max_size=64)
    | st.sampled_from([b"", b"{", b"[]", b"null", b'{"a":NaN}', b"\xff\xfe", b'"\\ud800"'])
)
# Path and query strings: any text, sent as its UTF-8 bytes (surrogates passed through, which
# makes invalid UTF-8 on the wire) percent-encoded.
url_texts = texts | st.integers().map(str)


def encoded(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture
def operations(app: Any) -> list[tuple[str, str, list[str]]]:
    spec = app.openapi()
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            query = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            found.append((method.upper(), path, query))
    return found


def signed_headers(path: str, body: bytes) -> dict[str, str]:
    if path.endswith("/stripe"):
        return {"Stripe-Signature": sign(body, STRIPE_SECRET)}
    if path.endswith("/hubspot"):
        timestamp = str(int(time.time() * 1000))
        uri = f"http://test{path}"
        return {
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature-v3": sign_v3(HUBSPOT_SECRET, "POST", uri, body, timestamp),
        }
    return {}


def test_no_input_makes_any_route_answer_5xx(ops, operations) -> None:
    loop = asyncio.get_event_loop()

    @examples(
        max_examples=400,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        operation=st.sampled_from(operations),
        path_values=st.lists(url_texts, min_size=3, max_size=3),
        query=st.dictionaries(st.sampled_from(["x", "cursor", "id"]) | url_texts, url_texts),
        known_query=st.lists(url_texts, max_size=6),
        body=bodies,
        signed=st.booleans(),
        content_type=st.sampled_from(
            ["application/json", "application/x-www-form-urlencoded", None]
        ),
    )
    def check(
        operation: tuple[str, str, list[str]],
        path_values: list[str],
        query: dict[str, str],
        known_query: list[str],
        body: bytes,
        signed: bool,
        content_type: str | None,
    ) -> None:
        method, template, names = operation
        path = template
        for value in path_values:
            if "{" not in path:
                break
            start, end = path.index("{"), path.index("}")
            path = path[:start] + encoded(value) + path[end + 1 :]
        pairs = [*query.items(), *zip(names, known_query, strict=False)]
        url = path + "?" + "&".join(f"{encoded(k)}={encoded(v)}" for k, v in pairs)
        headers = {"Prefer": "respond-async"}
        if content_type:
            headers["Content-Type"] = content_type
        if signed:
            headers |= signed_headers(template, body)
        response = loop.run_until_complete(
            ops.request(method, url, content=body if method != "GET" else None, headers=headers)
        )
        assert response.status_code < 500, (method, url, body[:200], response.text[:500])
        if response.status_code >= 400:
            answer = response.json()
            assert answer["success"] is False and answer["error"], answer

    check()
