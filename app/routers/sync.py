"""The website's endpoints: POST, GET and DELETE
/api/crm/sync/{owner,property,enquiry,booking,membership} and POST /api/crm/sync/{kind}/batch;
all accept through the same service functions."""

# No `from __future__ import annotations` here: FastAPI must see each closure's model class.

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from app.deps import ServicesDep, SyncAuth
from app.errors import InvalidInput
from app.records import PUBLIC_KINDS, SPECS, Kind, KindSpec, unstorable
from app.sync.accept import MAX_BATCH, parse_batch
from app.sync.schemas import BatchAnswer, ConflictAnswer, answer_model, delete_model, status_model
from app.sync.service import delete_record, record_status, sync_batch, sync_record

router = APIRouter(prefix="/api/crm/sync", tags=["sync"], dependencies=[SyncAuth])
routers = [router]


def _wants_async(prefer: str | None) -> bool:
    return bool(prefer) and "respond-async" in (prefer or "").lower()


def _add_routes(spec: KindSpec) -> None:
    kind, model, id_field = spec.kind, spec.model, spec.id_field

    async def post(
        body: model,  # type: ignore[valid-type]
        services: ServicesDep,
        prefer: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        fields: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
        reply = await sync_record(services, kind, fields, respond_async=_wants_async(prefer))
        return JSONResponse(reply.body.model_dump(mode="json"), reply.status_code)

    def queried_id(request: Request) -> str:
        external_id = request.query_params.get(id_field, "").strip()
        if not external_id:
            raise InvalidInput(id_field, "query parameter required")
        if problem := unstorable(external_id):
            raise InvalidInput(id_field, problem)
        if len(external_id) > 255:
            raise InvalidInput(id_field, "at most 255 characters")
        return external_id

    async def get(request: Request, services: ServicesDep) -> Any:
        return await record_status(services, kind, queried_id(request))

    async def delete(
        request: Request,
        services: ServicesDep,
        cascade: Annotated[
            bool, Query(description="delete its live children first, instead of a 409")
        ] = False,
        prefer: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        reply = await delete_record(
            services,
            kind,
            queried_id(request),
            cascade=cascade,
            respond_async=_wants_async(prefer),
        )
        return JSONResponse(reply.body.model_dump(mode="json"), reply.status_code)

    async def batch(request: Request, services: ServicesDep) -> JSONResponse:
        answer = await sync_batch(services, kind, parse_batch(await request.body()))
        return JSONResponse(answer.model_dump(), 202)

    post.__name__ = f"sync_{kind.value}"
    get.__name__ = f"{kind.value}_sync_status"
    batch.__name__ = f"batch_{kind.value}"
    delete.__name__ = f"delete_{kind.value}"
    router.add_api_route(
        f"/{kind.value}",
        post,
        methods=["POST"],
        response_model=answer_model(kind),
        summary=f"Sync one {kind.value}",
        description=(
            f"Stores the {kind.value}'s snapshot, queues it for every provider and waits up to "
            "SYNC_WAIT_SECONDS: 200 when delivered (or unchanged), 202 with statusUrl when "
            "still in flight (or with `Prefer: respond-async`), 502 when a CRM rejected it. "
            f"A body with only `{id_field}` re-syncs the stored snapshot."
        ),
        responses={
            202: {"description": "accepted, in flight", "model": answer_model(kind)},
            404: {"description": "only the id was sent, for a record never synced"},
            422: {"description": "a field is missing or malformed (named)"},
            502: {"description": "a CRM rejected it", "model": answer_model(kind)},
        },
    )
    router.add_api_route(
        f"/{kind.value}",
        get,
        methods=["GET"],
        response_model=status_model(kind),
        summary=f"Sync status of one {kind.value} (query: {id_field})",
        openapi_extra={
            "parameters": [
                {
                    "name": id_field,
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    "description": f"the website's {id_field}",
                }
            ]
        },
        responses={404: {"description": "never synced"}},
    )
    router.add_api_route(
        f"/{kind.value}",
        delete,
        methods=["DELETE"],
        response_model=delete_model(kind),
        summary=f"Delete one {kind.value} from every CRM (query: {id_field})",
        description=(
            f"Marks the {kind.value} deleted and queues its delete at every provider that holds "
            "it (a queued create or update of it is not sent), then waits up to "
            f"SYNC_WAIT_SECONDS: 200 `{spec.label} deleted from CRM` once every provider "
            f"confirmed (`{spec.label} already deleted` when repeated), 202 with statusUrl "
            "while in flight (or with `Prefer: respond-async`), 502 when a CRM refused. Live "
            "children (an owner's properties or membership, a property's enquiries and "
            "bookings) answer 409 naming them, unless `cascade=true`, which deletes them "
            "first. A POST of the record afterwards brings it back (created anew)."
        ),
        openapi_extra={
            "parameters": [
                {
                    "name": id_field,
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    "description": f"the website's {id_field}",
                }
            ]
        },
        responses={
            200: {
                "description": "deleted at every provider",
                "content": {
                    "application/json": {
                        "example": {
                            "success": True,
                            "message": f"{spec.label} deleted from CRM",
                            id_field: "user_123abc" if id_field == "userId" else "123",
                            "crmId": "crm_contact_7b9d0b959da4",
                            "syncStatus": "deleted",
                            "lastSyncedAt": "2026-11-30T10:00:00Z",
                            "lastError": None,
                            "providers": {
                                "mock": {
                                    "crmId": "crm_contact_7b9d0b959da4",
                                    "status": "deleted",
                                    "lastSyncedAt": "2026-11-30T10:00:00Z",
                                    "lastError": None,
                                }
                            },
                            "deleted": [{"kind": kind.value, "id": "user_123abc"}],
                        }
                    }
                },
            },
            202: {"description": "accepted, in flight", "model": delete_model(kind)},
            404: {"description": "never synced"},
            409: {"description": "live children, without cascade", "model": ConflictAnswer},
            502: {"description": "a CRM refused the delete", "model": delete_model(kind)},
        },
    )
    router.add_api_route(
        f"/{kind.value}/batch",
        batch,
        methods=["POST"],
        status_code=202,
        response_model=BatchAnswer,
        summary=f"Sync up to {MAX_BATCH:,} {kind.value} records",
        description=(
            f"A JSON array of {kind.value} records (`{id_field}` required in each). Each is "
            "validated on its own: the accepted ones are stored and queued in one transaction; "
            "each rejected one is reported with its index, id, field and reason. 202 with the "
            f"counts; 413 over {MAX_BATCH:,} records."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "maxItems": MAX_BATCH,
                            "items": {"type": "object", "required": [id_field]},
                        }
                    }
                },
            }
        },
        responses={413: {"description": "too many records"}, 422: {}},
    )


for _kind in PUBLIC_KINDS:
    _add_routes(SPECS[Kind(_kind)])
