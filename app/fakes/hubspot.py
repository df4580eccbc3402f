"""A fake HubSpot for developers, end-to-end tests and the bench: the CRM v3 object and v4
association endpoints crm-sync calls, bodies checked against HubSpot's OpenAPI files
(specs/hubspot), HubSpot's rolling 10-s limit with its 429 body and headers, an in-memory store,
and faults on demand (`/_fake/faults`). `crm-sync fake-hubspot --port P --rate-limit N`."""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from app.fakes.common import CONTROL_PREFIX, FakeState, FaultPlan, FaultyApp
from app.providers import hubspot_spec

# Object types by every name HubSpot accepts for them in a path.
TYPE_NAMES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "notes": "notes",
    "note": "notes",
    "0-46": "notes",
    "leads": "leads",
    "lead": "leads",
    "0-136": "leads",
    "0-420": "listings",
    "listings": "listings",
    "listing": "listings",
}
# Email as HubSpot accepts it: ASCII, one @, a dotted domain.
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)
DAILY_LIMIT = 500_000


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, category: str, message: str, **extra: Any) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return JSONResponse(body, status_code=status)


def _batch_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


@dataclass
class Store:
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    unique: dict[tuple[str, str], dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    associations: set[tuple[str, str, str, str, int]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def find(self, otype: str, id_property: str | None, value: str) -> dict[str, Any] | None:
        if id_property and id_property != "hs_object_id":
            found = self.unique[(otype, id_property)].get(value.lower())
            return self.objects[otype].get(found) if found else None
        return self.objects[otype].get(value)

    def put(self, otype: str, properties: dict[str, str], existing: dict[str, Any] | None) -> Any:
        now = _now()
        if existing is None:
            oid = str(next(self._ids))
            existing = {"id": oid, "properties": {}, "createdAt": now, "archived": False}
            self.objects[otype][oid] = existing
        existing["properties"].update(properties)
        existing["properties"]["hs_object_id"] = existing["id"]
        existing["updatedAt"] = now
        for (t, prop), index in self.unique.items():
            if t == otype and properties.get(prop):
                index[properties[prop].lower()] = existing["id"]
        return existing

    def index(self, otype: str, prop: str) -> None:
        """Make `prop` a unique-value property (HubSpot: hasUniqueValue) of `otype`."""
        index = self.unique[(otype, prop)]
        for obj in self.objects[otype].values():
            value = obj["properties"].get(prop)
            if value:
                index[str(value).lower()] = obj["id"]

    def view(self, obj: dict[str, Any], trace: str | None = None, **extra: Any) -> dict[str, Any]:
        out = {k: v for k, v in obj.items()} | extra
        out["properties"] = dict(obj["properties"])
        if trace is not None:
            out["objectWriteTraceId"] = trace
        return out


def _invalid_emails(otype: str, properties: dict[str, str]) -> str | None:
    email = properties.get("email")
    if otype != "contacts" or email is None or EMAIL.match(email):
        return None
    detail = {
        "isValid": False,
        "message": f"Email address {email} is invalid",
        "error": "INVALID_EMAIL",
        "name": "email",
        "localizedErrorMessage": f"Email address {email} is invalid",
    }
    details = json.dumps([detail], separators=(",", ":"), ensure_ascii=False)
    return f"Property values were not valid: {details}"


class FakeHubSpot:
    def __init__(self, rate_limit: int = 100, token: str | None = None) -> None:
        self.rate_limit = rate_limit
        self.token = token
        self.state = FakeState()
        self.store = Store()
        self.store.index("contacts", "email")
        self.rate_limited = 0

    # -- HubSpot's answers to limits and faults -----------------------------------------------

    def limit_headers(self) -> dict[str, str]:
        in_window = self.state.counter.in_window()
        return {
            "X-HubSpot-RateLimit-Max": str(self.rate_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(self.rate_limit - in_window, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
            "X-HubSpot-RateLimit-Daily-Remaining": str(
                max(DAILY_LIMIT - self.state.counter.total, 0)
            ),
            "X-HubSpot-RateLimit-Secondly": str(max(self.rate_limit // 10, 1)),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(
                max(self.rate_limit // 10 - min(in_window, self.rate_limit // 10), 0)
            ),
        }

    def too_many(self, policy: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.rate_limited += 1
        daily = policy == "DAILY"
        body = {
            "status": "error",
            "message": f"You have reached your {'daily' if daily else 'ten_secondly_rolling'} "
            "limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "requestId": str(uuid.uuid4()),
        }
        headers = self.limit_headers()
        if not daily:
            headers["Retry-After"] = "1"
        return 429, headers, body

    def fault_answer(self, fault: str, status: int) -> tuple[int, dict[str, str], dict[str, Any]]:
        if fault == "rate_limit":
            return self.too_many("TEN_SECONDLY_ROLLING")
        if fault == "daily_limit":
            return self.too_many("DAILY")
        body = {
            "status": "error",
            "message": "internal error",
            "correlationId": str(uuid.uuid4()),
            "category": "INTERNAL_ERROR",
        }
        return status, {}, body

    # -- the app ------------------------------------------------------------------------------

    def asgi(self) -> ASGIApp:
        return FaultyApp(self.app(), self.state, self.fault_answer)

    def app(self) -> FastAPI:
        app = FastAPI(title="fake HubSpot", docs_url=None, redoc_url=None, openapi_url=None)
        fake = self

        @app.middleware("http")
        async def hubspot_gate(request: Request, call_next: Any) -> Response:
            if request.url.path.startswith(CONTROL_PREFIX):
                response: Response = await call_next(request)
                return response
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token or (fake.token and token != fake.token):
                return _error(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            if fake.state.counter.in_window() > fake.rate_limit:
                status, headers, body = fake.too_many("TEN_SECONDLY_ROLLING")
                return JSONResponse(body, status_code=status, headers=headers)
            response = await call_next(request)
            response.headers.update(fake.limit_headers())
            return response

        async def body_of(request: Request) -> tuple[Any, JSONResponse | None]:
            try:
                body = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None, _error(400, "VALIDATION_ERROR", "Invalid input JSON")
            problems = hubspot_spec.errors(request.method, request.url.path, body)
            if problems:
                return None, _error(
                    400, "VALIDATION_ERROR", "Invalid input JSON: " + "; ".join(problems[:5])
                )
            return body, None

        def otype_of(name: str) -> str | None:
            return TYPE_NAMES.get(name.lower())

        def not_found(name: str) -> JSONResponse:
            return _error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")

        def batch_answer(results: list[Any], errors: list[Any], ok: int = 200) -> JSONResponse:
            body: dict[str, Any] = {
                "status": "COMPLETE",
                "results": results,
                "startedAt": _now(),
                "completedAt": _now(),
            }
            if errors:
                body |= {"numErrors": len(errors), "errors": errors}
            return JSONResponse(body, status_code=207 if errors else ok)

        @app.post("/crm/v3/objects/{object_type}/batch/upsert")
        async def batch_upsert(object_type: str, request: Request) -> Response:
            body, problem = await body_of(request)
            if problem:
                return problem
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            ids = [str(i["id"]).lower() for i in body["inputs"]]
            if len(set(ids)) != len(ids):
                return _error(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input.")
            results, errors = [], []
            for item in body["inputs"]:
                trace = item.get("objectWriteTraceId")
                prop = item.get("idProperty") or "hs_object_id"
                props = dict(item["properties"])
                if prop != "hs_object_id":
                    props.setdefault(prop, str(item["id"]))
                    if (otype, prop) not in fake.store.unique:
                        fake.store.index(otype, prop)
                invalid = _invalid_emails(otype, props)
                if invalid:
                    context = {"objectWriteTraceId": [trace]} if trace else {"ids": [item["id"]]}
                    errors.append(_batch_error("VALIDATION_ERROR", invalid, context))
                    continue
                existing = fake.store.find(otype, prop, str(item["id"]))
                obj = fake.store.put(otype, props, existing)
                results.append(fake.store.view(obj, trace, new=existing is None))
            return batch_answer(results, errors)

        @app.post("/crm/v3/objects/{object_type}/batch/create")
        async def batch_create(object_type: str, request: Request) -> Response:
            body, problem = await body_of(request)
            if problem:
                return problem
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            results, errors = [], []
            for item in body["inputs"]:
                trace = item.get("objectWriteTraceId")
                props = dict(item["properties"])
                context = {"objectWriteTraceId": [trace]} if trace else {}
                invalid = _invalid_emails(otype, props)
                if invalid:
                    errors.append(_batch_error("VALIDATION_ERROR", invalid, context))
                    continue
                taken = [
                    p
                    for (t, p), index in fake.store.unique.items()
                    if t == otype and props.get(p) and props[p].lower() in index
                ]
                if taken:
                    errors.append(_batch_error("CONFLICT", f"{taken[0]} already exists", context))
                    continue
                obj = fake.store.put(otype, props, None)
                for association in item.get("associations", []):
                    for spec in association["types"]:
                        fake.store.associations.add(
                            (
                                otype,
                                obj["id"],
                                "?",
                                association["to"]["id"],
                                spec["associationTypeId"],
                            )
                        )
                results.append(fake.store.view(obj, trace))
            return batch_answer(results, errors, ok=201)

        @app.post("/crm/v3/objects/{object_type}/batch/update")
        async def batch_update(object_type: str, request: Request) -> Response:
            body, problem = await body_of(request)
            if problem:
                return problem
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            results, errors = [], []
            for item in body["inputs"]:
                trace = item.get("objectWriteTraceId")
                existing = fake.store.find(otype, item.get("idProperty"), str(item["id"]))
                invalid = _invalid_emails(otype, item["properties"])
                if existing is None or invalid:
                    context = {"objectWriteTraceId": [trace]} if trace else {"ids": [item["id"]]}
                    category = "VALIDATION_ERROR" if invalid else "OBJECT_NOT_FOUND"
                    message = invalid or (
                        "Could not get some objects, they may be deleted or not exist. "
                        "Check that ids are valid."
                    )
                    errors.append(_batch_error(category, message, context))
                    continue
                obj = fake.store.put(otype, dict(item["properties"]), existing)
                results.append(fake.store.view(obj, trace))
            return batch_answer(results, errors)

        @app.post("/crm/v3/objects/{object_type}/batch/read")
        async def batch_read(object_type: str, request: Request) -> Response:
            body, problem = await body_of(request)
            if problem:
                return problem
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            results, missing = [], []
            for item in body["inputs"]:
                obj = fake.store.find(otype, body.get("idProperty"), str(item["id"]))
                if obj is None:
                    missing.append(str(item["id"]))
                else:
                    results.append(fake.store.view(obj))
            errors = []
            if missing:
                errors.append(
                    _batch_error(
                        "OBJECT_NOT_FOUND",
                        "Could not get some objects, they may be deleted or not exist.",
                        {"ids": missing},
                    )
                )
            return batch_answer(results, errors)

        @app.post("/crm/v3/objects/{object_type}")
        async def create_one(object_type: str, request: Request) -> Response:
            body, problem = await body_of(request)
            if problem:
                return problem
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            props = dict(body["properties"])
            invalid = _invalid_emails(otype, props)
            if invalid:
                return _error(400, "VALIDATION_ERROR", invalid)
            email = props.get("email")
            if otype == "contacts" and email:
                existing = fake.store.find("contacts", "email", email)
                if existing is not None:
                    return _error(
                        409, "CONFLICT", f"Contact already exists. Existing ID: {existing['id']}"
                    )
            obj = fake.store.put(otype, props, None)
            return JSONResponse(fake.store.view(obj), status_code=201)

        @app.get("/crm/v3/objects/{object_type}")
        async def list_objects(object_type: str, limit: int = 10) -> Response:
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            found = list(fake.store.objects[otype].values())[:limit]
            return JSONResponse({"results": [fake.store.view(o) for o in found]})

        @app.get("/crm/v3/objects/{object_type}/{object_id}")
        async def get_object(
            object_type: str, object_id: str, idProperty: str | None = None
        ) -> Response:
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            obj = fake.store.find(otype, idProperty, object_id)
            if obj is None:
                return _error(404, "OBJECT_NOT_FOUND", "resource not found")
            return JSONResponse(fake.store.view(obj))

        @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/associate/default")
        async def associate_default(from_type: str, to_type: str, request: Request) -> Response:
            return await associate(from_type, to_type, request, default=True)

        @app.post("/crm/v4/associations/{from_type}/{to_type}/batch/create")
        async def associate_create(from_type: str, to_type: str, request: Request) -> Response:
            return await associate(from_type, to_type, request, default=False)

        async def associate(
            from_type: str, to_type: str, request: Request, *, default: bool
        ) -> Response:
            body, problem = await body_of(request)
            if problem:
                return problem
            a, b = otype_of(from_type), otype_of(to_type)
            if a is None or b is None:
                return not_found(from_type if a is None else to_type)
            results, errors = [], []
            for item in body["inputs"]:
                f, t = str(item["from"]["id"]), str(item["to"]["id"])
                if f not in fake.store.objects[a] or t not in fake.store.objects[b]:
                    errors.append(
                        _batch_error(
                            "VALIDATION_ERROR",
                            f"No {a if f not in fake.store.objects[a] else b} with id "
                            f"{f if f not in fake.store.objects[a] else t}",
                            {"fromObjectId": [f], "toObjectId": [t]},
                        )
                    )
                    continue
                types = [0] if default else [s["associationTypeId"] for s in item["types"]]
                for type_id in types:
                    fake.store.associations.add((a, f, b, t, type_id))
                spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": types[0]}
                if default:
                    results.append({"from": {"id": f}, "to": {"id": t}, "associationSpec": spec})
                else:
                    results.append(
                        {
                            "fromObjectTypeId": from_type,
                            "fromObjectId": f,
                            "toObjectTypeId": to_type,
                            "toObjectId": t,
                            "labels": [],
                        }
                    )
            return batch_answer(results, errors, ok=200 if default else 201)

        # -- control, for tests and demos ------------------------------------------------------

        @app.get(f"{CONTROL_PREFIX}/stats")
        async def stats() -> dict[str, Any]:
            return fake.state.stats() | {
                "rateLimit": fake.rate_limit,
                "rateLimited": fake.rate_limited,
                "objects": {t: len(objs) for t, objs in fake.store.objects.items()},
                "associations": len(fake.store.associations),
            }

        @app.get(f"{CONTROL_PREFIX}/objects/{{object_type}}")
        async def objects(object_type: str) -> Any:
            otype = otype_of(object_type) or object_type
            return list(fake.store.objects[otype].values())

        @app.get(f"{CONTROL_PREFIX}/associations")
        async def associations() -> Any:
            return [
                {"from": [a, f], "to": [b, t], "typeId": type_id}
                for a, f, b, t, type_id in sorted(fake.store.associations)
            ]

        @app.put(f"{CONTROL_PREFIX}/faults")
        async def set_faults(plan: FaultPlan) -> dict[str, Any]:
            fake.state.faults = plan
            return plan.model_dump()

        @app.delete(f"{CONTROL_PREFIX}/faults")
        async def clear_faults() -> dict[str, Any]:
            fake.state.faults = FaultPlan()
            return fake.state.faults.model_dump()

        @app.post(f"{CONTROL_PREFIX}/reset")
        async def reset() -> dict[str, Any]:
            fake.state.counter.reset()
            fake.state.faults = FaultPlan()
            fake.store = Store()
            fake.store.index("contacts", "email")
            fake.rate_limited = 0
            return {"reset": True, "at": time.time()}

        return app


def create_app(rate_limit: int = 100, token: str | None = None) -> ASGIApp:
    return FakeHubSpot(rate_limit, token).asgi()
