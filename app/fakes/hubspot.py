"""A fake HubSpot for developers, end-to-end tests and the bench: the CRM v3 object and v4
association endpoints crm-sync calls, bodies checked against our models of HubSpot's request
bodies (app/providers/hubspot/spec.py), HubSpot's rolling 10-s limit with its 429 body and
headers, an in-memory store, and faults on demand (`/_fake/faults`). For the pull: contacts
searched (with HubSpot's 10,000-result cap), seeded and edited (`/_fake/contacts`), signed
webhooks sent (`/_fake/webhooks`). `crm-sync fake-hubspot --port P --rate-limit N`."""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp

from app.fakes.common import CONTROL_PREFIX, FakeState, FaultPlan, FaultyApp, WindowCounter
from app.fakes.hubspot_deletes import add_delete_routes
from app.fakes.hubspot_events import add_event_routes
from app.fakes.hubspot_properties import PropertyRegistry, add_property_routes, refusal
from app.providers.hubspot import spec as hubspot_spec

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
# "The search endpoints are rate limited to five requests per second per account"
# (https://developers.hubspot.com/docs/api-reference/search/guide, Limits).
SEARCH_LIMIT = 5


def _now() -> str:
    return _iso(datetime.now(UTC))


def _iso(at: datetime) -> str:
    """HubSpot's datetime format: UTC, milliseconds (so strings sort in time order)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time_value(value: Any) -> str | None:
    """A search filter's datetime value (epoch ms or ISO) in the stored format."""
    text = str(value)
    try:
        if text.lstrip("-").isdigit():
            return _iso(datetime.fromtimestamp(int(text) / 1000, UTC))
        return _iso(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


_STORED_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEARCH_CAP = 10_000  # HubSpot's search returns at most 10,000 results of one query
DATETIME_PROPERTIES = {"lastmodifieddate", "createdate", "hs_lastmodifieddate"}


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
    # Deleting (app/fakes/hubspot_deletes.py): the recycling bin, GDPR deletes, blocklist.
    archived: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    gdpr_deleted: list[dict[str, str]] = field(default_factory=list)
    blocklist: set[str] = field(default_factory=set)
    # (object type, merged-away id) -> the surviving id: reads follow it, writes do not.
    merged: dict[tuple[str, str], str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    version: int = 0  # bumped on every write, so searches can keep a sorted copy until then
    _sorted: dict[tuple[str, str], tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)
    _keys: dict[tuple[str, str], tuple[int, list[tuple[int, Any]]]] = field(default_factory=dict)

    def sort_keys(self, otype: str, prop: str) -> list[tuple[int, Any]]:
        ordered = self.sorted_by(otype, prop)
        cached = self._keys.get((otype, prop))
        if cached is None or cached[0] != self.version:
            cached = (self.version, [_sort_key(o, prop) for o in ordered])
            self._keys[(otype, prop)] = cached
        return cached[1]

    def sorted_by(self, otype: str, prop: str) -> list[dict[str, Any]]:
        """Objects in ascending order of `prop` (then id), cached until the next write."""
        cached = self._sorted.get((otype, prop))
        if cached is None or cached[0] != self.version:
            every = sorted(self.objects[otype].values(), key=lambda o: int(o["id"]))
            every.sort(key=lambda o: _sort_key(o, prop))
            cached = (self.version, every)
            self._sorted[(otype, prop)] = cached
        return cached[1]

    def find(self, otype: str, id_property: str | None, value: str) -> dict[str, Any] | None:
        if id_property and id_property != "hs_object_id":
            found = self.unique[(otype, id_property)].get(value.lower())
            return self.objects[otype].get(found) if found else None
        return self.objects[otype].get(value)

    def read(self, otype: str, id_property: str | None, value: str) -> dict[str, Any] | None:
        """find(), and a merged-away id reads as the object it was merged into."""
        found = self.find(otype, id_property, value)
        if found is None and (not id_property or id_property == "hs_object_id"):
            survivor = self.merged.get((otype, value))
            return self.objects[otype].get(survivor) if survivor else None
        return found

    def put(
        self,
        otype: str,
        properties: dict[str, str],
        existing: dict[str, Any] | None,
        at: datetime | None = None,
    ) -> Any:
        now = _iso(at) if at else _now()
        self.version += 1
        if existing is None:
            oid = str(next(self._ids))
            existing = {"id": oid, "properties": {}, "createdAt": now, "archived": False}
            existing["properties"]["createdate"] = now
            self.objects[otype][oid] = existing
        existing["properties"].update(properties)
        existing["properties"]["hs_object_id"] = existing["id"]
        existing["properties"]["lastmodifieddate"] = now
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
    def __init__(
        self,
        rate_limit: int = 100,
        token: str | None = None,
        search_limit: int = SEARCH_LIMIT,
        *,
        seeded: bool = True,
    ) -> None:
        """`search_limit`: searches a second (HubSpot's 5). `seeded`: crm-sync's custom
        properties exist from the start (as if `crm-sync hubspot setup` had run); False: only
        HubSpot's own, so setup has everything to create."""
        self.rate_limit = rate_limit
        self.search_limit = search_limit
        self.search_counter = WindowCounter(window=1.0)  # searches in the rolling second
        self.rate_limited_by: dict[str, int] = {}
        self.token = token
        self.seeded = seeded
        self.state = FakeState()
        self.rate_limited = 0
        self.searches = 0
        self.registry = PropertyRegistry(seeded=seeded)
        self.store = self.new_store()

    def new_store(self) -> Store:
        """An empty store whose unique properties (email, and those defined unique) are indexed."""
        store = Store()
        store.index("contacts", "email")
        for otype in list(self.registry.properties):
            for name in self.registry.unique(otype):
                store.index(otype, name)
        return store

    # -- strictness: property values, deleted and merged objects ------------------------------

    def refused_values(self, otype: str, inputs: list[dict[str, Any]]) -> JSONResponse | None:
        """HubSpot refuses a whole write whose inputs carry a property value it does not accept
        (unknown property, type, option, date not at midnight, length): 400 VALIDATION_ERROR
        naming the property and value, not the input."""
        for item in inputs:
            values = dict(item.get("properties") or {})
            prop = item.get("idProperty")
            if prop and prop != "hs_object_id":
                values.setdefault(prop, item.get("id"))
            problems = self.registry.problems(otype, values)
            if problems:
                return refusal(problems)
        return None

    def not_unique(self, otype: str, prop: str | None) -> JSONResponse | None:
        """An upsert or read by an `idProperty` that is not a unique property is refused."""
        if not prop or prop == "hs_object_id" or (otype == "contacts" and prop == "email"):
            return None
        if prop in self.registry.unique(otype):
            return None
        return _error(
            400,
            "VALIDATION_ERROR",
            f"Unable to perform update/upsert by non-unique {otype} property {prop}",
        )

    def merge(self, otype: str, primary: str, merged: str) -> dict[str, Any]:
        """Merge object `merged` into `primary` as HubSpot does: the primary survives (its
        values kept, blanks filled from the merged one), the merged id reads as the primary
        from then on, writes to it answer OBJECT_NOT_FOUND, its unique values and
        associations move to the primary."""
        store = self.store
        keep, gone = store.objects[otype][primary], store.objects[otype].pop(merged)
        store.version += 1
        for name, value in gone["properties"].items():
            if value not in (None, "") and keep["properties"].get(name) in (None, ""):
                keep["properties"][name] = value
        for (t, _prop), index in store.unique.items():
            if t == otype:
                for value in [v for v, i in index.items() if i == merged]:
                    index[value] = primary
        store.merged[(otype, merged)] = primary
        for (t, old), new in list(store.merged.items()):
            if t == otype and new == merged:
                store.merged[(t, old)] = primary
        moved = set()
        for a, f, b, t, type_id in store.associations:
            f = primary if (a, f) == (otype, merged) else f
            t = primary if (b, t) == (otype, merged) else t
            moved.add((a, f, b, t, type_id))
        store.associations = moved
        return store.view(keep)

    # -- contacts as sales staff would edit them (tests, demos, the bench) --------------------

    def seed_contacts(
        self,
        contacts: list[dict[str, str]],
        *,
        start: datetime | None = None,
        step: timedelta = timedelta(0),
    ) -> list[str]:
        """Create contacts (properties each); the n-th last modified at start + n * step."""
        ids = []
        for n, properties in enumerate(contacts):
            at = start + n * step if start is not None else None
            ids.append(self.store.put("contacts", dict(properties), None, at=at)["id"])
        return ids

    def edit_contact(self, contact_id: str, properties: dict[str, str]) -> dict[str, Any]:
        """Change a contact as a person in HubSpot would: lastmodifieddate moves to now."""
        existing = self.store.objects["contacts"][contact_id]
        return self.store.view(self.store.put("contacts", dict(properties), existing))

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
        self.rate_limited_by[policy] = self.rate_limited_by.get(policy, 0) + 1
        daily = policy == "DAILY"
        body = {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
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
        if fault == "secondly_limit":
            return self.too_many("SECONDLY")
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
            for item in body["inputs"]:
                if refused := fake.not_unique(otype, item.get("idProperty")):
                    return refused
            if refused := fake.refused_values(otype, body["inputs"]):
                return refused
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
            if refused := fake.refused_values(otype, body["inputs"]):
                return refused
            results, errors = [], []
            for item in body["inputs"]:
                trace = item.get("objectWriteTraceId")
                props = dict(item["properties"])
                context = {"objectWriteTraceId": [trace]} if trace else {}
                if missing := _missing_targets(fake.store, item.get("associations") or []):
                    errors.append(
                        _batch_error(
                            "OBJECT_NOT_FOUND",
                            f"Could not associate: no object with id {missing[0]}",
                            context,
                        )
                    )
                    continue
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
            if refused := fake.refused_values(otype, body["inputs"]):
                return refused
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
            if refused := fake.not_unique(otype, body.get("idProperty")):
                return refused
            results, missing = [], []
            for item in body["inputs"]:
                obj = fake.store.read(otype, body.get("idProperty"), str(item["id"]))
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
            if refused := fake.refused_values(otype, [body]):
                return refused
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

        @app.post("/crm/v3/objects/{object_type}/search")
        async def search(object_type: str, request: Request) -> Response:
            if fake.search_counter.record() > fake.search_limit:
                status, headers, limited = fake.too_many("SECONDLY")
                return JSONResponse(limited, status_code=status, headers=headers)
            # HubSpot takes sorts as {"propertyName", "direction"} objects or as names; the
            # fake checks sorts itself and the rest of the body against our model.
            try:
                raw = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
            sorts = raw.pop("sorts", None) if isinstance(raw, dict) else None
            problems = hubspot_spec.errors(request.method, request.url.path, raw)
            problems += _sort_problems(sorts)
            if problems:
                return _error(
                    400, "VALIDATION_ERROR", "Invalid input JSON: " + "; ".join(problems[:5])
                )
            body = raw | ({"sorts": _sort_specs(sorts)} if sorts else {})
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            limit = int(body.get("limit") or 10)
            after = int(body.get("after") or 0)
            if limit > 200:
                return _error(400, "VALIDATION_ERROR", "limit must be at most 200")
            if after + limit > SEARCH_CAP:
                return _error(
                    400,
                    "VALIDATION_ERROR",
                    f"There was a problem with the request: paging past {SEARCH_CAP} results "
                    "of one search is not supported",
                )
            groups = [
                [
                    f | {"value": _time_value(f.get("value")), "converted": True}
                    if f.get("propertyName") in DATETIME_PROPERTIES and "value" in f
                    else f
                    for f in g.get("filters") or []
                ]
                for g in body.get("filterGroups") or []
            ]
            sorts = body.get("sorts") or [{"propertyName": "hs_object_id"}]
            prop = sorts[0].get("propertyName", "hs_object_id")
            ordered = fake.store.sorted_by(otype, prop)
            only = groups[0][0] if len(groups) == 1 and len(groups[0]) == 1 else {}
            if only.get("propertyName") == prop and only.get("operator") in ("GT", "GTE"):
                # The incremental pull's query: one bound on the sort property; bisect for it.
                keys = fake.store.sort_keys(otype, prop)
                bound = (0, only["value"]) if only.get("value") is not None else (2, "")
                cut = bisect.bisect_left if only["operator"] == "GTE" else bisect.bisect_right
                found = ordered[cut(keys, bound) :]
            else:
                found = [o for o in ordered if not groups or any(_matches(o, g) for g in groups)]
            if str(sorts[0].get("direction", "ASCENDING")).upper() == "DESCENDING":
                found.reverse()
            fake.searches += 1
            page = found[after : after + limit]
            wanted = body.get("properties") or ["email", "firstname", "lastname"]
            answer: dict[str, Any] = {
                "total": len(found),
                "results": [_with_properties(fake.store.view(o), wanted) for o in page],
            }
            if after + limit < len(found):
                answer["paging"] = {"next": {"after": str(after + limit)}}
            return JSONResponse(answer)

        @app.get("/crm/v3/objects/{object_type}")
        async def list_objects(
            object_type: str, limit: int = 10, after: str | None = None, properties: str = ""
        ) -> Response:
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            every = sorted(fake.store.objects[otype].values(), key=lambda o: int(o["id"]))
            start = int(after) if after and after.isdigit() else 0
            found = [o for o in every if int(o["id"]) >= start][: min(limit, 100)]
            wanted = [p for p in properties.split(",") if p]
            answer: dict[str, Any] = {
                "results": [
                    _with_properties(fake.store.view(o), wanted) if wanted else fake.store.view(o)
                    for o in found
                ]
            }
            rest = [o for o in every if int(o["id"]) > int(found[-1]["id"])] if found else []
            if rest:
                answer["paging"] = {"next": {"after": rest[0]["id"]}}
            return JSONResponse(answer)

        @app.get("/crm/v3/objects/{object_type}/{object_id}")
        async def get_object(
            object_type: str, object_id: str, idProperty: str | None = None
        ) -> Response:
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            obj = fake.store.read(otype, idProperty, object_id)
            if obj is None:
                return _error(404, "OBJECT_NOT_FOUND", "resource not found")
            return JSONResponse(fake.store.view(obj))

        @app.post("/crm/v3/objects/{object_type}/merge")
        async def merge(object_type: str, request: Request) -> Response:
            """HubSpot's merge: {"primaryObjectId", "objectIdToMerge"}; answers the survivor."""
            otype = otype_of(object_type)
            if otype is None:
                return not_found(object_type)
            try:
                body = await request.json()
                primary, other = str(body["primaryObjectId"]), str(body["objectIdToMerge"])
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
            objects = fake.store.objects[otype]
            if primary not in objects or other not in objects or primary == other:
                return _error(400, "VALIDATION_ERROR", "Both objects must exist and differ")
            return JSONResponse(fake.merge(otype, primary, other))

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

        add_delete_routes(app, fake, TYPE_NAMES)
        add_event_routes(app, send_signed_webhook)
        add_property_routes(app, fake, TYPE_NAMES)

        # -- control, for tests and demos ------------------------------------------------------

        @app.get(f"{CONTROL_PREFIX}/stats")
        async def stats() -> dict[str, Any]:
            return fake.state.stats() | {
                "rateLimit": fake.rate_limit,
                "searchLimit": fake.search_limit,
                "rateLimited": fake.rate_limited,
                "rateLimitedBy": dict(fake.rate_limited_by),
                "maxSearchesInSecond": fake.search_counter.max_in_window,
                "objects": {t: len(objs) for t, objs in fake.store.objects.items()},
                "associations": len(fake.store.associations),
                "searches": fake.searches,
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

        @app.post(f"{CONTROL_PREFIX}/contacts")
        async def seed(request: Request) -> dict[str, Any]:
            """{"contacts": [{properties}], "start"?: ISO, "stepSeconds"?: n}"""
            body = await request.json()
            start = body.get("start")
            ids = fake.seed_contacts(
                list(body.get("contacts") or []),
                start=datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None,
                step=timedelta(seconds=float(body.get("stepSeconds") or 0)),
            )
            return {"ids": ids}

        @app.patch(f"{CONTROL_PREFIX}/contacts/{{contact_id}}")
        async def edit(contact_id: str, request: Request) -> Response:
            if contact_id not in fake.store.objects["contacts"]:
                return _error(404, "OBJECT_NOT_FOUND", "resource not found")
            body = await request.json()
            return JSONResponse(fake.edit_contact(contact_id, dict(body.get("properties") or {})))

        @app.post(f"{CONTROL_PREFIX}/webhooks")
        async def send_webhook(request: Request) -> dict[str, Any]:
            """Sign events as HubSpot does (v3) and POST them: {"url", "secret", "events"}."""
            body = await request.json()
            status, answer = await send_signed_webhook(body["url"], body["secret"], body["events"])
            return {"status": status, "body": answer}

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
            fake.store = fake.new_store()  # property definitions stay, as in an account
            fake.rate_limited = 0
            fake.rate_limited_by = {}
            fake.search_counter.reset()
            fake.searches = 0
            return {"reset": True, "at": time.time()}

        return app


# The object type at the other end of the HubSpot-defined association types crm-sync uses.
ASSOCIATION_TARGETS = {202: "contacts", 578: "contacts"}


def _missing_targets(store: Store, associations: list[dict[str, Any]]) -> list[str]:
    """The ids of association targets (of a type we know the target of) that do not exist."""
    missing = []
    for association in associations:
        target = str(association["to"]["id"])
        for spec in association["types"]:
            otype = ASSOCIATION_TARGETS.get(spec["associationTypeId"])
            if otype and target not in store.objects[otype]:
                missing.append(target)
    return missing


def _sort_problems(sorts: Any) -> list[str]:
    if sorts is None:
        return []
    if not isinstance(sorts, list):
        return ["sorts: not an array"]
    problems = []
    for n, spec in enumerate(sorts):
        if isinstance(spec, str):
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
            problems.append(f"sorts.{n}: a property name, or an object with propertyName")
        elif str(spec.get("direction", "ASCENDING")).upper() not in ("ASCENDING", "DESCENDING"):
            problems.append(f"sorts.{n}.direction: ASCENDING or DESCENDING")
    return problems


def _sort_specs(sorts: list[Any]) -> list[dict[str, str]]:
    return [
        {
            "propertyName": s.lstrip("-"),
            "direction": "DESCENDING" if s.startswith("-") else "ASCENDING",
        }
        if isinstance(s, str)
        else s
        for s in sorts
    ]


def _property(obj: dict[str, Any], prop: str) -> Any:
    return obj["id"] if prop == "hs_object_id" else obj["properties"].get(prop)


def _sort_key(obj: dict[str, Any], prop: str) -> tuple[int, Any]:
    value = _property(obj, prop)
    if value is None:
        return (1, "")
    text = str(value)
    return (0, float(text)) if text.replace(".", "", 1).lstrip("-").isdigit() else (0, text)


def _matches(obj: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    """A filter group: every filter holds (HubSpot ANDs within a group, ORs between groups)."""
    for f in filters:
        prop, op = f.get("propertyName", ""), str(f.get("operator", "EQ")).upper()
        have = _property(obj, prop)
        if op == "HAS_PROPERTY":
            if have in (None, ""):
                return False
            continue
        if op == "NOT_HAS_PROPERTY":
            if have not in (None, ""):
                return False
            continue
        if have in (None, ""):
            return False
        if op == "IN":
            if str(have).lower() not in {str(v).lower() for v in f.get("values") or []}:
                return False
            continue
        value: Any = f.get("value")
        left: Any = str(have)
        if prop in DATETIME_PROPERTIES:
            # Stored times are already in the one sortable format: only the filter converts.
            value = value if f.get("converted") else _time_value(value)
            left = have if _STORED_TIME.match(str(have)) else _time_value(have)
            if value is None or left is None:
                return False
        elif left.lstrip("-").isdigit() and str(value).lstrip("-").isdigit():
            left, value = int(left), int(str(value))
        else:
            left, value = left.lower(), str(value).lower()
        ok = {
            "EQ": left == value,
            "NEQ": left != value,
            "GT": left > value,
            "GTE": left >= value,
            "LT": left < value,
            "LTE": left <= value,
        }.get(op, False)
        if not ok:
            return False
    return True


def _with_properties(view: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    """Only the properties asked for, plus the three HubSpot always returns."""
    keep = set(wanted) | {"hs_object_id", "createdate", "lastmodifieddate"}
    view["properties"] = {k: v for k, v in view["properties"].items() if k in keep}
    return view


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3 as HubSpot's docs describe it: base64 of HMAC-SHA256, keyed with
    the app's secret, over method + URI + body + timestamp."""
    message = f"{method}{uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


async def send_signed_webhook(
    url: str, secret: str, events: list[dict[str, Any]], timestamp_ms: int | None = None
) -> tuple[int, Any]:
    """POST `events` to `url` the way HubSpot delivers webhooks (v3 signature headers)."""
    import httpx

    body = json.dumps(events, separators=(",", ":")).encode()
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, timestamp),
        "X-HubSpot-Signature-Version": "v3",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=headers)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def create_app(
    rate_limit: int = 100,
    token: str | None = None,
    search_limit: int = SEARCH_LIMIT,
    *,
    seeded: bool = True,
) -> ASGIApp:
    return FakeHubSpot(rate_limit, token, search_limit, seeded=seeded).asgi()
