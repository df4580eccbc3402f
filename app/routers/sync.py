"""The website's endpoints: POST and GET /api/crm/sync/{owner,property,enquiry,booking,membership}
and POST /api/crm/sync/{kind}/batch; all accept through the same service function."""

# No `from __future__ import annotations` here: FastAPI must see each closure's model class.

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from app.deps import ServicesDep, SyncAuth
from app.errors import InvalidInput
from app.records import PUBLIC_KINDS, SPECS, Kind, KindSpec, unstorable
from app.sync.accept import MAX_BATCH, parse_batch
from app.sync.schemas import BatchAnswer, answer_model, status_model
from app.sync.service import record_status, sync_batch, sync_record

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

    async def get(request: Request, services: ServicesDep) -> Any:
        external_id = request.query_params.get(id_field, "").strip()
        if not external_id:
            raise InvalidInput(id_field, "query parameter required")
        if problem := unstorable(external_id):
            raise InvalidInput(id_field, problem)
        return await record_status(services, kind, external_id)

    async def batch(request: Request, services: ServicesDep) -> JSONResponse:
        answer = await sync_batch(services, kind, parse_batch(await request.body()))
        return JSONResponse(answer.model_dump(), 202)

    post.__name__ = f"sync_{kind.value}"
    get.__name__ = f"{kind.value}_sync_status"
    batch.__name__ = f"batch_{kind.value}"
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
