"""The internal CRM's read API (ops scope): contacts, enquiries, notes and stats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, status

from app.crm import service
from app.crm.schemas import (
    ContactDetail,
    ContactPage,
    EnquiryOut,
    EnquiryPage,
    EnquiryUpdate,
    NoteIn,
    NoteOut,
    Stats,
)
from app.deps import OpsAuth, SessionDep
from app.providers.internal.models import ContactStatus, ContactType, EnquiryStatus
from app.routers.answers import AUTHED, BODY, COMMON, errors
from app.routers.body import JsonBodyRoute, example_body
from app.routers.params import PathText, Search, Text

router = APIRouter(
    prefix="/api/crm",
    tags=["internal CRM"],
    dependencies=[OpsAuth],
    route_class=JsonBodyRoute,
    responses=COMMON | AUTHED,
)
routers = [router]

Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
Cursor = Annotated[Text | None, Query(description="nextCursor from the previous page")]
NOT_FOUND = errors(404)
NoteBody = Annotated[
    NoteIn,
    Body(
        openapi_examples=example_body(
            follow_up={
                "content": "Call back about the gold plan",
                "noteType": "follow_up",
                "priority": "high",
                "reminderDate": "2026-12-01T09:00:00Z",
            },
            plain={"content": "Prefers email"},
        )
    ),
]
EnquiryBody = Annotated[
    EnquiryUpdate,
    Body(
        openapi_examples=example_body(
            contacted={"status": "contacted", "note": "Rang the guest; dates are free"}
        )
    ),
]
IncludeDeleted = Annotated[
    bool,
    Query(alias="includeDeleted", description="also soft-deleted rows (with their deletedAt)"),
]


def _author(request: Request) -> str:
    """Who did it: the API key's name (`ops` when auth is off in development)."""
    return str(getattr(request.state, "api_key", None) or "ops")


@router.get("/contacts", response_model=ContactPage, summary="List contacts, newest first")
async def list_contacts(
    session: SessionDep,
    contact_type: Annotated[ContactType | None, Query(alias="type")] = None,
    contact_status: Annotated[ContactStatus | None, Query(alias="status")] = None,
    search: Annotated[Search | None, Query(description="part of the name or email")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    include_deleted: IncludeDeleted = False,
) -> ContactPage:
    return await service.list_contacts(
        session,
        contact_type=contact_type.value if contact_type else None,
        status=contact_status.value if contact_status else None,
        search=search,
        cursor=cursor,
        limit=limit,
        include_deleted=include_deleted,
    )


@router.get(
    "/contacts/{contact_id}",
    response_model=ContactDetail,
    summary="One contact (by CRM id or website user id) with its properties, enquiries, "
    "bookings, membership, notes, interactions and activity",
    responses=NOT_FOUND,
)
async def get_contact(
    contact_id: PathText, session: SessionDep, include_deleted: IncludeDeleted = False
) -> ContactDetail:
    return await service.contact_detail(session, contact_id, include_deleted=include_deleted)


@router.post(
    "/contacts/{contact_id}/notes",
    response_model=NoteOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a note to a contact",
    responses=NOT_FOUND | BODY,
)
async def add_note(
    contact_id: PathText, body: NoteBody, session: SessionDep, request: Request
) -> NoteOut:
    return await service.add_note(session, contact_id, body, _author(request))


@router.get("/enquiries", response_model=EnquiryPage, summary="List enquiries, newest first")
async def list_enquiries(
    session: SessionDep,
    enquiry_status: Annotated[EnquiryStatus | None, Query(alias="status")] = None,
    owner_contact_id: Annotated[
        Text | None, Query(alias="ownerContactId", description="an owner's CRM id")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    include_deleted: IncludeDeleted = False,
) -> EnquiryPage:
    return await service.list_enquiries(
        session,
        status=enquiry_status.value if enquiry_status else None,
        owner_contact_id=owner_contact_id,
        cursor=cursor,
        limit=limit,
        include_deleted=include_deleted,
    )


@router.put(
    "/enquiries/{enquiry_id}",
    response_model=EnquiryOut,
    summary="Move an enquiry's status forward (by CRM id or website enquiry id)",
    responses=errors(404, 409) | BODY,
)
async def update_enquiry(
    enquiry_id: PathText, body: EnquiryBody, session: SessionDep, request: Request
) -> EnquiryOut:
    return await service.update_enquiry_status(
        session, enquiry_id, body.status, body.note, _author(request)
    )


@router.get("/stats", response_model=Stats, summary="Counts, conversion, failed syncs (24 h)")
async def get_stats(session: SessionDep) -> Stats:
    return await service.stats(session)
