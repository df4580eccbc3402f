"""The fake HubSpot's property definitions and the strictness they bring, as HubSpot has them:
the CRM properties API (list, read, create properties and groups) and the checks every write
goes through (unknown properties, types, enumeration options, `date` values only at midnight
UTC, text length), each refused with HubSpot's 400 VALIDATION_ERROR "Property values were not
valid: [details]" (details: {"isValid", "message", "error", "name", "localizedErrorMessage"}).

Facts: https://developers.hubspot.com/docs/api-reference/latest/crm/properties/guide (types,
fieldTypes, options, groups, 409 on an existing name); date properties at midnight UTC and
65,536-character text: https://developers.hubspot.com/docs/api/crm/properties. The error codes
(PROPERTY_DOESNT_EXIST, INVALID_OPTION, INVALID_DATE...) follow the ones HubSpot's answers use;
where its docs give none (numbers, datetimes, length) the names are ours (README)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from app.providers.hubspot import properties as definitions
from app.providers.hubspot.spec import PropertyCreate, PropertyGroupCreate

# Our object names (properties.ObjectName) to the fake's store names.
STORE_NAMES = {"listings": "listings"}


def _error(status: int, category: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        },
        status_code=status,
    )


class PropertyRegistry:
    """Per object type (store name): property definitions in HubSpot's answer shape, and the
    property groups."""

    def __init__(self, *, seeded: bool = True) -> None:
        self.properties: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.created: list[tuple[str, str]] = []  # (object, name) made through the API
        for d in definitions.definitions():
            if d.custom and not seeded:
                continue
            otype = STORE_NAMES.get(d.object, d.object)
            if d.custom:
                self.groups[otype].setdefault(
                    definitions.GROUP, {"name": definitions.GROUP, "label": definitions.GROUP_LABEL}
                )
            self.properties[otype][d.name] = _answer(
                d.create_body() | {"groupName": definitions.GROUP if d.custom else "hubspot"},
                hubspot_defined=not d.custom,
            )

    def unique(self, otype: str) -> list[str]:
        return [n for n, p in self.properties[otype].items() if p.get("hasUniqueValue")]

    def problems(self, otype: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        """HubSpot's detail for every property value it would refuse ([] when all are valid)."""
        found = []
        for name, value in values.items():
            definition = self.properties[otype].get(name)
            problem = _check(name, definition, value)
            if problem:
                code, message = problem
                found.append(
                    {
                        "isValid": False,
                        "message": message,
                        "error": code,
                        "name": name,
                        "localizedErrorMessage": message,
                    }
                )
        return found


def _answer(body: dict[str, Any], *, hubspot_defined: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "description": "",
        "options": [],
        "hasUniqueValue": False,
        "hidden": False,
        "formField": False,
        **body,
        "hubspotDefined": hubspot_defined,
        "createdAt": now,
        "updatedAt": now,
        "archived": False,
    }


def _check(name: str, definition: dict[str, Any] | None, value: Any) -> tuple[str, str] | None:
    if definition is None:
        return "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
    text = "" if value is None else str(value)
    if text == "":
        return None  # clearing a value is always allowed
    kind = definition["type"]
    if kind in ("enumeration", "bool"):
        allowed = [o["value"] for o in definition.get("options") or []]
        if allowed and not all(part in allowed for part in text.split(";")):
            return "INVALID_OPTION", f"{text} was not one of the allowed options: {allowed}"
    elif kind == "number":
        try:
            float(text)
        except ValueError:
            return "INVALID_NUMBER", f"{text} is not a valid number"
    elif kind in ("date", "datetime"):
        moment = _moment(text)
        if moment is None:
            return "INVALID_DATE", f"{text} is not a valid {kind}"
        if kind == "date" and (moment.hour, moment.minute, moment.second, moment.microsecond) != (
            0,
            0,
            0,
            0,
        ):
            return (
                "INVALID_DATE",
                f"{text} is at {moment.time().isoformat()} UTC, not midnight: a date property "
                "takes a day at midnight UTC",
            )
    if len(text) > definitions.TEXT_MAX:
        return (
            "INVALID_LENGTH",
            f"{name} is {len(text)} characters long; the most is {definitions.TEXT_MAX}",
        )
    return None


def _moment(text: str) -> datetime | None:
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def refusal(details: list[dict[str, Any]]) -> JSONResponse:
    """HubSpot's answer to a write carrying property values it refuses: the whole call, 400."""
    detail_text = json.dumps(details, separators=(",", ":"), ensure_ascii=False)
    return _error(400, "VALIDATION_ERROR", f"Property values were not valid: {detail_text}")


class FakeWithProperties(Protocol):
    """The fake these routes serve: its registry, its store (replaced on reset), and the
    names of object types in paths."""

    registry: PropertyRegistry
    store: Any


def add_property_routes(app: FastAPI, fake: FakeWithProperties, type_names: dict[str, str]) -> None:
    """`/crm/v3/properties/{objectType}` (list, create), `/{name}` (read), `/groups` (list,
    create): creating an existing name answers 409 CONFLICT as HubSpot does."""

    def otype_of(name: str) -> str | None:
        return type_names.get(name.lower())

    async def parsed(request: Request, model: Any) -> Any:
        try:
            return model.model_validate(json.loads(await request.body()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}"
                for e in exc.errors()
            )
            return _error(400, "VALIDATION_ERROR", f"Invalid input JSON: {problems}")

    @app.get("/crm/v3/properties/{object_type}/groups")
    async def list_groups(object_type: str) -> Response:
        otype = otype_of(object_type)
        if otype is None:
            return _error(
                400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}"
            )
        return JSONResponse({"results": list(fake.registry.groups[otype].values())})

    @app.post("/crm/v3/properties/{object_type}/groups")
    async def create_group(object_type: str, request: Request) -> Response:
        otype = otype_of(object_type)
        if otype is None:
            return _error(
                400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}"
            )
        body = await parsed(request, PropertyGroupCreate)
        if isinstance(body, JSONResponse):
            return body
        if body.name in fake.registry.groups[otype]:
            return _error(409, "CONFLICT", f"A property group named {body.name} already exists")
        group = body.model_dump(exclude_none=True) | {"archived": False}
        fake.registry.groups[otype][body.name] = group
        return JSONResponse(group, status_code=201)

    @app.get("/crm/v3/properties/{object_type}")
    async def list_properties(object_type: str) -> Response:
        otype = otype_of(object_type)
        if otype is None:
            return _error(
                400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}"
            )
        return JSONResponse({"results": list(fake.registry.properties[otype].values())})

    @app.get("/crm/v3/properties/{object_type}/{name}")
    async def read_property(object_type: str, name: str) -> Response:
        otype = otype_of(object_type)
        found = fake.registry.properties[otype].get(name) if otype else None
        if found is None:
            return _error(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        return JSONResponse(found)

    @app.post("/crm/v3/properties/{object_type}")
    async def create_property(object_type: str, request: Request) -> Response:
        otype = otype_of(object_type)
        if otype is None:
            return _error(
                400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}"
            )
        body = await parsed(request, PropertyCreate)
        if isinstance(body, JSONResponse):
            return body
        if body.name in fake.registry.properties[otype]:
            return _error(409, "CONFLICT", f"A property named {body.name} already exists")
        if body.groupName not in fake.registry.groups[otype] and body.groupName != "hubspot":
            return _error(
                400, "VALIDATION_ERROR", f"Property group {body.groupName} does not exist"
            )
        if body.type in ("enumeration", "bool") and not body.options:
            return _error(
                400, "VALIDATION_ERROR", f"{body.type} property {body.name} needs options"
            )
        created = _answer(body.model_dump(exclude_none=True))
        fake.registry.properties[otype][body.name] = created
        fake.registry.created.append((otype, body.name))
        if body.hasUniqueValue:
            fake.store.index(otype, body.name)
        return JSONResponse(created, status_code=201)
