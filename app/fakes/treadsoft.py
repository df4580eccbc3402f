"""A fake TreadSoft: /api/v1/{contacts,properties,enquiries,bookings} (POST, PUT /{id}, GET,
DELETE, GET ?website_id=), /api/v1/health, the seed's two auth headers, Idempotency-Key replay,
an in-memory store and faults on demand (`/_fake/faults`). `crm-sync fake-treadsoft --port P`."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from app.fakes.common import CONTROL_PREFIX, FakeState, FaultPlan, FaultyApp

RESOURCES = ("contacts", "properties", "enquiries", "bookings")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class TreadSoftStore:
    rows: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {r: {} for r in RESOURCES}
    )
    replies: dict[str, tuple[int, Any]] = field(default_factory=dict)  # Idempotency-Key
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _problem(body: Any) -> tuple[str, str] | None:
    """(field, message) for a body TreadSoft would refuse."""
    if not isinstance(body, dict):
        return "body", "must be a JSON object"
    custom = body.get("custom_fields")
    if not isinstance(custom, dict) or not custom.get("website_id"):
        return "custom_fields.website_id", "is required"
    for name in ("email", "guestEmail"):
        # null clears a field (an erased guest's details); anything else must be an address
        if body.get(name) is not None and not EMAIL.match(str(body[name])):
            return name, f"invalid email address {body[name]!r}"
    return None


class FakeTreadSoft:
    def __init__(self, key: str | None = None, secret: str | None = None) -> None:
        self.key, self.secret = key, secret
        self.state = FakeState()
        self.store = TreadSoftStore()

    def fault_answer(self, fault: str, status: int) -> tuple[int, dict[str, str], dict[str, Any]]:
        if fault in ("rate_limit", "daily_limit", "secondly_limit"):
            return 429, {"Retry-After": "1"}, {"error": "too many requests"}
        return status, {}, {"error": "internal server error"}

    def asgi(self) -> ASGIApp:
        return FaultyApp(self.app(), self.state, self.fault_answer)

    def app(self) -> FastAPI:
        app = FastAPI(title="fake TreadSoft", docs_url=None, redoc_url=None, openapi_url=None)
        fake = self

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Response:
            path = request.url.path
            if path.startswith(CONTROL_PREFIX) or path == "/api/v1/health":
                response: Response = await call_next(request)
                return response
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            secret = request.headers.get("x-api-secret", "")
            if (
                scheme.lower() != "bearer"
                or not key
                or not secret
                or (fake.key and key != fake.key)
                or (fake.secret and secret != fake.secret)
            ):
                return JSONResponse({"error": "invalid API key or secret"}, status_code=401)
            response = await call_next(request)
            return response

        def unknown(resource: str) -> JSONResponse | None:
            if resource not in RESOURCES:
                return JSONResponse({"error": f"unknown resource {resource}"}, status_code=404)
            return None

        @app.get("/api/v1/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/api/v1/{resource}")
        async def create(resource: str, request: Request) -> Response:
            if bad := unknown(resource):
                return bad
            key = request.headers.get("idempotency-key")
            if key and key in fake.store.replies:
                status, body = fake.store.replies[key]
                return JSONResponse(body, status_code=status)
            body = await request.json()
            if problem := _problem(body):
                return JSONResponse(
                    {"error": f"{problem[0]}: {problem[1]}", "field": problem[0]}, status_code=422
                )
            row = {"id": f"ts_{resource[:-1]}_{next(fake.store._ids)}", **body}
            fake.store.rows[resource][row["id"]] = row
            if key:
                fake.store.replies[key] = (201, row)
            return JSONResponse(row, status_code=201)

        @app.put("/api/v1/{resource}/{row_id}")
        async def update(resource: str, row_id: str, request: Request) -> Response:
            if bad := unknown(resource):
                return bad
            row = fake.store.rows[resource].get(row_id)
            if row is None:
                return JSONResponse({"error": f"{resource} {row_id} not found"}, status_code=404)
            body = await request.json()
            if resource == "contacts" and "custom_fields" in body:
                body["custom_fields"] = {**row.get("custom_fields", {}), **body["custom_fields"]}
            if problem := _problem({**row, **body}):
                return JSONResponse(
                    {"error": f"{problem[0]}: {problem[1]}", "field": problem[0]}, status_code=422
                )
            row.update(body)
            return JSONResponse(row)

        @app.get("/api/v1/{resource}")
        async def list_rows(resource: str, website_id: str | None = None) -> Response:
            if bad := unknown(resource):
                return bad
            rows = list(fake.store.rows[resource].values())
            if website_id is not None:
                rows = [
                    r for r in rows if r.get("custom_fields", {}).get("website_id") == website_id
                ]
            return JSONResponse({"data": rows})

        @app.get("/api/v1/{resource}/{row_id}")
        async def get_row(resource: str, row_id: str) -> Response:
            if bad := unknown(resource):
                return bad
            row = fake.store.rows[resource].get(row_id)
            if row is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return JSONResponse(row)

        @app.delete("/api/v1/{resource}/{row_id}")
        async def delete_row(resource: str, row_id: str) -> Response:
            if bad := unknown(resource):
                return bad
            if fake.store.rows[resource].pop(row_id, None) is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return Response(status_code=204)

        @app.get(f"{CONTROL_PREFIX}/stats")
        async def stats() -> dict[str, Any]:
            return fake.state.stats() | {
                "rows": {r: len(rows) for r, rows in fake.store.rows.items()}
            }

        @app.put(f"{CONTROL_PREFIX}/faults")
        async def set_faults(plan: FaultPlan) -> dict[str, Any]:
            fake.state.faults = plan
            return plan.model_dump()

        @app.delete(f"{CONTROL_PREFIX}/faults")
        async def clear_faults() -> dict[str, Any]:
            fake.state.faults = FaultPlan()
            return fake.state.faults.model_dump()

        return app


def create_app(key: str | None = None, secret: str | None = None) -> ASGIApp:
    return FakeTreadSoft(key, secret).asgi()
