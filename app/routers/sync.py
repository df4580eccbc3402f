"""POST and GET /api/crm/sync/{owner,property,enquiry,booking,membership}."""

# No `from __future__ import annotations` here: FastAPI must see each closure's model class.

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from app.deps import ServicesDep, SyncAuth
from app.errors import InvalidInput
from app.records import PUBLIC_KINDS, SPECS, Kind, KindSpec, unstorable
from app.sync.api import record_status, sync_record

router = APIRouter(prefix="/api/crm/sync", tags=["sync"], dependencies=[SyncAuth])


def _wants_async(prefer: str | None) -> bool:
    return bool(prefer) and "respond-async" in (prefer or "").lower()


def _add_routes(spec: KindSpec) -> None:
    kind, model = spec.kind, spec.model

    async def post(
        body: model,  # type: ignore[valid-type]
        services: ServicesDep,
        prefer: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        fields: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
        reply = await sync_record(services, kind, fields, respond_async=_wants_async(prefer))
        return JSONResponse(reply.body, reply.status_code)

    async def get(request: Request, services: ServicesDep) -> dict[str, Any]:
        external_id = request.query_params.get(spec.id_field, "").strip()
        if not external_id:
            raise InvalidInput(spec.id_field, "query parameter required")
        if problem := unstorable(external_id):
            raise InvalidInput(spec.id_field, problem)
        return await record_status(services, kind, external_id)

    post.__name__ = f"sync_{kind.value}"
    get.__name__ = f"{kind.value}_sync_status"
    router.add_api_route(
        f"/{kind.value}",
        post,
        methods=["POST"],
        summary=f"Sync one {kind.value}",
        description=(
            f"Stores the {kind.value}'s snapshot, queues it for every provider and waits up to "
            "SYNC_WAIT_SECONDS: 200 when delivered (or unchanged), 202 with statusUrl when "
            "still in flight (or with `Prefer: respond-async`), 502 when a CRM rejected it. "
            f"A body with only `{spec.id_field}` re-syncs the stored snapshot."
        ),
        responses={202: {"description": "accepted, in flight"}, 404: {}, 422: {}, 502: {}},
    )
    router.add_api_route(
        f"/{kind.value}",
        get,
        methods=["GET"],
        summary=f"Sync status of one {kind.value} (query: {spec.id_field})",
    )


for _kind in PUBLIC_KINDS:
    _add_routes(SPECS[Kind(_kind)])
