"""The OpenAPI document tells the truth and documents itself (issue 10, acceptance 3): typed
answers for every operation, the bearer scheme behind the Authorize button, examples."""

from __future__ import annotations

from typing import Any

import pytest

from app.records import PUBLIC_KINDS, SPECS

SYNC_ANSWERS = ("200", "202", "404", "422", "502")


@pytest.fixture
async def spec(client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def examples_of(content: dict[str, Any]) -> list[Any]:
    media = content["application/json"]
    return [e["value"] for e in media.get("examples", {}).values()] + (
        [media["example"]] if "example" in media else []
    )


async def test_every_operation_has_a_typed_success_answer(spec) -> None:
    untyped = []
    for method, path, op in operations(spec):
        success = {c: r for c, r in op["responses"].items() if c.startswith("2")}
        if not success or not all(r.get("content") for r in success.values()):
            untyped.append(f"{method} {path}")
            continue
        for answer in success.values():
            for media in answer["content"].values():
                schema = media["schema"]
                assert schema.get("$ref") or schema.get("type") or schema.get("anyOf"), (
                    path,
                    schema,
                )
    assert untyped == []


async def test_every_error_answer_has_the_contracts_shape(spec) -> None:
    error = spec["components"]["schemas"]["ErrorAnswer"]
    assert {"success", "error", "field"} <= set(error["properties"])
    for method, path, op in operations(spec):
        if path == "/readyz":
            continue  # its 503 is the readiness answer itself, saying what is not ready
        for code, answer in op["responses"].items():
            if code in ("422", "401", "403", "413", "503"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, (method, path)


async def test_keys_are_an_http_bearer_scheme_the_authorize_button_uses(spec, anonymous) -> None:
    schemes = spec["components"]["securitySchemes"]
    [scheme] = schemes.values()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    secured = {f"{m} {p}" for m, p, op in operations(spec) if op.get("security")}
    assert "POST /api/crm/sync/owner" in secured and "GET /api/crm/sync/logs" in secured
    assert "POST /api/webhooks/stripe" not in secured and "GET /healthz" not in secured
    async with anonymous() as nobody:
        assert (await nobody.get("/api/crm/status")).status_code == 401
        docs = await nobody.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_every_request_body_has_an_example(spec) -> None:
    missing = [
        f"{m} {p}"
        for m, p, op in operations(spec)
        if "requestBody" in op and not examples_of(op["requestBody"]["content"])
    ]
    assert missing == []


@pytest.mark.parametrize("kind", [k.value for k in PUBLIC_KINDS])
async def test_the_sync_posts_carry_request_and_answer_examples(spec, kind: str) -> None:
    op = spec["paths"][f"/api/crm/sync/{kind}"]["post"]
    id_field = SPECS[next(k for k in PUBLIC_KINDS if k.value == kind)].id_field
    sent = examples_of(op["requestBody"]["content"])
    assert any(len(e) > 1 and id_field in e for e in sent)
    assert {id_field} in [set(e) for e in sent]  # the re-sync form
    for code in SYNC_ANSWERS:
        [example] = examples_of(op["responses"][code]["content"])
        assert example["success"] is (code in ("200", "202")), (code, example)


@pytest.mark.parametrize("kind", [k.value for k in PUBLIC_KINDS])
async def test_the_sync_status_names_its_id_parameter(spec, client, kind: str) -> None:
    id_field = SPECS[next(k for k in PUBLIC_KINDS if k.value == kind)].id_field
    [param] = spec["paths"][f"/api/crm/sync/{kind}"]["get"]["parameters"]
    assert (param["name"], param["in"], param["required"]) == (id_field, "query", True)
    assert param["schema"]["type"] == "string" and param["schema"]["maxLength"] == 255
    missing = await client.get(f"/api/crm/sync/{kind}")
    assert missing.status_code == 422 and missing.json()["field"] == id_field
    unknown = await client.get(f"/api/crm/sync/{kind}", params={id_field: "nobody"})
    assert unknown.status_code == 404


async def test_metrics_are_documented_as_plain_text(spec, client) -> None:
    answer = spec["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/plain"]
    assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")
