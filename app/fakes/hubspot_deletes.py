"""The fake HubSpot's deleting endpoints: batch archive per object type and a contact's GDPR
delete, bodies checked against our models of them (app/providers/hubspot/deletes.py, from
HubSpot's documentation), answered as HubSpot does (204, no body; 400 VALIDATION_ERROR)."""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from app.fakes.common import CONTROL_PREFIX
from app.providers.hubspot.deletes import GDPR_DELETE, BatchArchive, GdprDelete

M = TypeVar("M", bound=BaseModel)


class FakeHubSpot(Protocol):
    """The fake whose app gets these routes: its store is replaced on reset, so it is read
    from the fake on every request."""

    store: Any


def _validation_error(message: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "message": message, "category": "VALIDATION_ERROR"}, status_code=400
    )


async def _parsed(request: Request, model: type[M]) -> M | JSONResponse:
    try:
        return model.model_validate(json.loads(await request.body()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _validation_error("Invalid input JSON")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()
        )
        return _validation_error(f"Invalid input JSON: {problems}")


def add_delete_routes(app: FastAPI, fake: FakeHubSpot, type_names: dict[str, str]) -> None:
    """Register the endpoints on the fake's app (state in `fake.store`); `type_names` maps every
    name of an object type in a path to the store's name."""

    def forget(otype: str, oid: str) -> dict[str, Any] | None:
        store = fake.store
        obj: dict[str, Any] | None = store.objects[otype].pop(oid, None)
        if obj is None:
            return None
        store.version += 1
        # Its unique values are free again; its associations are gone.
        for (t, _prop), index in store.unique.items():
            if t == otype:
                for value in [v for v, i in index.items() if i == oid]:
                    del index[value]
        store.associations = {
            a
            for a in store.associations
            if (a[0], a[1]) != (otype, oid) and (a[2], a[3]) != (otype, oid)
        }
        return obj

    @app.post(GDPR_DELETE)
    async def gdpr_delete(request: Request) -> Response:
        body = await _parsed(request, GdprDelete)
        if isinstance(body, JSONResponse):
            return body
        if body.idProperty not in (None, "hs_object_id", "email"):
            return _validation_error(f"Property {body.idProperty} is not a unique property")
        found = fake.store.find("contacts", body.idProperty, body.objectId)
        if found is None:
            if body.idProperty == "email":
                # HubSpot blocklists an email it does not know, so it cannot come back.
                fake.store.blocklist.add(body.objectId.lower())
                return Response(status_code=204)
            return JSONResponse(
                {
                    "status": "error",
                    "message": "resource not found",
                    "category": "OBJECT_NOT_FOUND",
                },
                status_code=404,
            )
        obj = forget("contacts", found["id"])
        email = (obj or {}).get("properties", {}).get("email")
        if email:
            fake.store.blocklist.add(str(email).lower())
        fake.store.gdpr_deleted.append({"id": found["id"], "by": body.idProperty or "id"})
        return Response(status_code=204)

    @app.post("/crm/v3/objects/{object_type}/batch/archive")
    async def batch_archive(object_type: str, request: Request) -> Response:
        otype = type_names.get(object_type.lower())
        if otype is None:
            return _validation_error(f"Unable to infer object type from: {object_type}")
        body = await _parsed(request, BatchArchive)
        if isinstance(body, JSONResponse):
            return body
        for item in body.inputs:
            obj = forget(otype, item.id)
            if obj is not None:
                fake.store.archived[otype][item.id] = {**obj, "archived": True}
        # HubSpot answers 204 for ids it does not have (or has archived already) too.
        return Response(status_code=204)

    @app.get(f"{CONTROL_PREFIX}/archived/{{object_type}}")
    async def archived(object_type: str) -> Any:
        otype = type_names.get(object_type.lower()) or object_type
        return list(fake.store.archived[otype].values())

    @app.get(f"{CONTROL_PREFIX}/gdpr-deletions")
    async def gdpr_deletions() -> Any:
        return {"deleted": fake.store.gdpr_deleted, "blocklist": sorted(fake.store.blocklist)}
