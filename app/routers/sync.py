"""The website's endpoints: POST, GET and DELETE
/api/crm/sync/{owner,property,enquiry,booking,membership} and POST /api/crm/sync/{kind}/batch;
all accept through the same service functions."""

# No `from __future__ import annotations` here: FastAPI must see each closure's model class.

from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Header, Query, Request, Response
from pydantic import AfterValidator

from app.deps import ServicesDep, SyncAuth
from app.errors import InvalidInput
from app.inputs import storable_text
from app.records import PUBLIC_KINDS, SPECS, Kind, KindSpec
from app.routers.answers import AUTHED, BODY, COMMON, ErrorAnswer, errors
from app.routers.body import JsonBodyRoute
from app.sync.accept import MAX_BATCH, parse_batch
from app.sync.examples import EXAMPLES, answer_examples
from app.sync.schemas import (
    BatchAnswer,
    ConflictAnswer,
    DeleteAnswer,
    SyncStatus,
    answer_model,
    delete_model,
    status_model,
)
from app.sync.service import delete_record, record_status, sync_batch, sync_record

router = APIRouter(
    prefix="/api/crm/sync",
    tags=["sync"],
    dependencies=[SyncAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]


def _wants_async(prefer: str | None) -> bool:
    return bool(prefer) and "respond-async" in (prefer or "").lower()


def _add_routes(spec: KindSpec) -> None:
    kind, model, id_field, label = spec.kind, spec.model, spec.id_field, spec.label
    answer, status = answer_model(kind), status_model(kind)
    example = EXAMPLES[kind]
    said = answer_examples(kind)

    async def post(
        body: Annotated[
            model,  # type: ignore[valid-type]
            Body(
                openapi_examples={
                    "record": {"summary": f"a {kind.value}", "value": example},
                    "resync": {
                        "summary": "only the id: re-sync the stored snapshot",
                        "value": {id_field: example[id_field]},
                    },
                }
            ),
        ],
        request: Request,
        prefer: Annotated[
            str | None, Header(description="`respond-async`: answer 202 at once")
        ] = None,
    ) -> Response:
        # The hot path: the services straight from the app, and the answer serialised once by
        # its own model (a returned Response skips FastAPI's re-validation of it).
        fields: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
        services = request.app.state.services
        reply = await sync_record(services, kind, fields, respond_async=_wants_async(prefer))
        return Response(
            reply.body.model_dump_json(), reply.status_code, media_type="application/json"
        )

    async def get(
        services: ServicesDep,
        external_id: Annotated[
            str,
            Query(
                alias=id_field,
                min_length=1,
                max_length=255,
                description=f"the website's {id_field}",
                examples=[example[id_field]],
            ),
            AfterValidator(storable_text),
        ],
    ) -> SyncStatus:
        if not external_id.strip():
            raise InvalidInput(id_field, "must not be blank")
        return await record_status(services, kind, external_id.strip())

    async def delete(
        services: ServicesDep,
        response: Response,
        external_id: Annotated[
            str,
            Query(
                alias=id_field,
                min_length=1,
                max_length=255,
                description=f"the website's {id_field}",
                examples=[example[id_field]],
            ),
            AfterValidator(storable_text),
        ],
        cascade: Annotated[
            bool, Query(description="delete its live children first, instead of a 409")
        ] = False,
        prefer: Annotated[
            str | None, Header(description="`respond-async`: answer 202 at once")
        ] = None,
    ) -> DeleteAnswer:
        if not external_id.strip():
            raise InvalidInput(id_field, "must not be blank")
        reply = await delete_record(
            services,
            kind,
            external_id.strip(),
            cascade=cascade,
            respond_async=_wants_async(prefer),
        )
        response.status_code = reply.status_code
        return cast(DeleteAnswer, reply.body)

    async def batch(request: Request, services: ServicesDep) -> BatchAnswer:
        return await sync_batch(services, kind, parse_batch(await request.body()))

    post.__name__ = f"sync_{kind.value}"
    get.__name__ = f"{kind.value}_sync_status"
    batch.__name__ = f"batch_{kind.value}"
    delete.__name__ = f"delete_{kind.value}"
    router.add_api_route(
        f"/{kind.value}",
        post,
        methods=["POST"],
        response_model=answer,
        summary=f"Sync one {kind.value}",
        description=(
            f"Stores the {kind.value}'s snapshot, queues it for every provider and waits up to "
            "SYNC_WAIT_SECONDS: 200 when delivered (or unchanged), 202 with statusUrl when "
            "still in flight (or with `Prefer: respond-async`), 502 when a CRM rejected it. "
            f"A body with only `{id_field}` re-syncs the stored snapshot."
        ),
        responses={
            200: {"description": "delivered, or unchanged", "content": said(200)},
            202: {"description": "accepted, in flight", "model": answer, "content": said(202)},
            404: {
                "description": "only the id was sent, for a record never synced",
                "model": ErrorAnswer,
                "content": said(404),
            },
            422: {
                "description": "a field is missing or malformed (named)",
                "model": ErrorAnswer,
                "content": said(422),
            },
            502: {"description": "a CRM rejected it", "model": answer, "content": said(502)},
            **BODY,
        },
    )
    router.add_api_route(
        f"/{kind.value}",
        get,
        methods=["GET"],
        response_model=status,
        summary=f"Sync status of one {kind.value} (query: {id_field})",
        responses=errors(404),
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
            404: {"description": "never synced", "model": ErrorAnswer},
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
        summary=f"Sync up to {MAX_BATCH:,} {label.lower()} records",
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
                            "items": {"$ref": f"#/components/schemas/{model.__name__}"},
                        },
                        "examples": {
                            "two": {
                                "summary": f"two {kind.value} records",
                                "value": [example, {**example, id_field: f"{example[id_field]}2"}],
                            }
                        },
                    }
                },
            }
        },
        responses=BODY,
    )


for _kind in PUBLIC_KINDS:
    _add_routes(SPECS[Kind(_kind)])
