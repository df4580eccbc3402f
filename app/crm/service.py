"""The internal CRM's reads and its two writes from ops (an enquiry's status, a note).

Services take the request's session and never commit: the request's unit of work does.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.crm.schemas import (
    ActivityOut,
    BookingOut,
    ContactDetail,
    ContactOut,
    ContactPage,
    ContactStats,
    Counts,
    EnquiryOut,
    EnquiryPage,
    EnquiryStats,
    InteractionOut,
    MembershipOut,
    MembershipStats,
    NoteIn,
    NoteOut,
    PropertyOut,
    PropertyStats,
    Stats,
    SyncStats,
)
from app.db import is_postgres, utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.inputs import text_problem
from app.models import LogStatus, SyncLog
from app.providers.internal.models import (
    ContactType,
    CrmActivity,
    CrmBooking,
    CrmContact,
    CrmEnquiry,
    CrmInteraction,
    CrmMembership,
    CrmNote,
    CrmProperty,
    CrmPropertyLink,
    EnquiryStatus,
    enquiry_next_statuses,
    new_id,
)

DETAIL_LIMIT = 100  # items per list in a contact's detail view
Paged = TypeVar("Paged", CrmContact, CrmEnquiry)


# -- paging -------------------------------------------------------------------------------


def _encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        when = datetime.fromisoformat(created_at).astimezone(UTC)
        if not isinstance(row_id, str) or text_problem(row_id):
            raise ValueError
        return when, row_id
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput("cursor", "not a cursor this API gave out") from None


def _after(model: type[Paged], cursor: str | None) -> list[ColumnElement[bool]]:
    """Keyset paging, newest first by (created_at, id): the rows after the cursor's."""
    if not cursor:
        return []
    at, row_id = _decode_cursor(cursor)
    return [or_(model.created_at < at, and_(model.created_at == at, model.id < row_id))]


def _newest_first(model: type[Paged]) -> tuple[ColumnElement[Any], ...]:
    return (model.created_at.desc(), model.id.desc())


def _next_cursor(rows: Sequence[Paged], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return _encode_cursor(last.created_at, last.id)


# -- contacts -----------------------------------------------------------------------------


def like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contacts_query(
    *,
    contact_type: str | None = None,
    status: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    include_deleted: bool = False,
) -> Select[CrmContact]:
    """The contact list's query. Search is a case-insensitive substring match over name and
    email: on PostgreSQL each side is served by its trigram GIN index (a BitmapOr). Deleted
    contacts are left out unless `include_deleted`."""
    stmt = select(CrmContact)
    if not include_deleted:
        stmt = stmt.where(CrmContact.deleted_at.is_(None))
    if contact_type:
        stmt = stmt.where(CrmContact.type == contact_type)
    if status:
        stmt = stmt.where(CrmContact.status == status)
    term = (search or "").strip()
    if term:
        pattern = like_pattern(term)
        stmt = stmt.where(
            or_(
                CrmContact.name.ilike(pattern, escape="\\"),
                CrmContact.email.ilike(pattern, escape="\\"),
            )
        )
    # One row more than asked tells whether there is a next page.
    return (
        stmt.where(*_after(CrmContact, cursor))
        .order_by(*_newest_first(CrmContact))
        .limit(limit + 1)
    )


async def plan_for_each_search(session: AsyncSession) -> None:
    """Have PostgreSQL plan this transaction's statements for their actual parameters.

    asyncpg prepares statements, and after five runs PostgreSQL may switch to a generic plan
    made without knowing the search term. For `ILIKE $1` that plan guesses a common term and
    walks the newest-first index, reading all 100k rows for a rare one (~250 ms instead of a
    few ms: bench/bench_internal.py). Planning per search costs well under a millisecond."""
    if is_postgres(session):
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def list_contacts(
    session: AsyncSession,
    *,
    contact_type: str | None,
    status: str | None,
    search: str | None,
    cursor: str | None,
    limit: int,
    include_deleted: bool = False,
) -> ContactPage:
    stmt = contacts_query(
        contact_type=contact_type,
        status=status,
        search=search,
        cursor=cursor,
        limit=limit,
        include_deleted=include_deleted,
    )
    if search and search.strip():
        await plan_for_each_search(session)
    rows = list(await session.scalars(stmt))
    return ContactPage(
        contacts=[ContactOut.model_validate(r) for r in rows[:limit]],
        next_cursor=_next_cursor(rows, limit),
    )


async def find_contact(
    session: AsyncSession, ref: str, *, include_deleted: bool = False
) -> CrmContact:
    """By CRM id, or by the website user id (the seeds' dual id); a deleted one only if asked."""
    contact = await session.scalar(
        select(CrmContact).where(or_(CrmContact.id == ref, CrmContact.user_id == ref)).limit(1)
    )
    if contact is None or (contact.deleted_at is not None and not include_deleted):
        raise NotFound(f"contact {ref} is not in the internal CRM")
    return contact


def _live(model: Any, include_deleted: bool) -> list[ColumnElement[bool]]:
    return [] if include_deleted else [model.deleted_at.is_(None)]


async def contact_detail(
    session: AsyncSession, ref: str, *, include_deleted: bool = False
) -> ContactDetail:
    """A contact with what hangs on it; deleted ones (and their deleted rows) only if asked."""
    contact = await find_contact(session, ref, include_deleted=include_deleted)
    cid = contact.id
    properties = await session.execute(
        select(CrmProperty, CrmPropertyLink.link_status)
        .outerjoin(
            CrmPropertyLink,
            and_(
                CrmPropertyLink.crm_property_id == CrmProperty.id,
                CrmPropertyLink.owner_contact_id == cid,
            ),
        )
        .where(CrmProperty.owner_contact_id == cid, *_live(CrmProperty, include_deleted))
        .order_by(CrmProperty.created_at.desc())
        .limit(DETAIL_LIMIT)
    )
    enquiries = await session.execute(
        _enquiries_select()
        .where(
            or_(CrmEnquiry.owner_contact_id == cid, CrmEnquiry.guest_contact_id == cid),
            *_live(CrmEnquiry, include_deleted),
        )
        .order_by(CrmEnquiry.created_at.desc())
        .limit(DETAIL_LIMIT)
    )
    bookings = await session.scalars(
        select(CrmBooking)
        .where(
            or_(CrmBooking.owner_contact_id == cid, CrmBooking.guest_contact_id == cid),
            *_live(CrmBooking, include_deleted),
        )
        .order_by(CrmBooking.created_at.desc())
        .limit(DETAIL_LIMIT)
    )
    membership = await session.scalar(
        select(CrmMembership).where(
            CrmMembership.contact_id == cid, *_live(CrmMembership, include_deleted)
        )
    )
    notes = await session.scalars(
        select(CrmNote)
        .where(CrmNote.contact_id == cid, *_live(CrmNote, include_deleted))
        .order_by(CrmNote.created_at.desc())
        .limit(DETAIL_LIMIT)
    )
    interactions = await session.scalars(
        select(CrmInteraction)
        .where(CrmInteraction.contact_id == cid)
        .order_by(CrmInteraction.created_at.desc())
        .limit(DETAIL_LIMIT)
    )
    activity = await session.scalars(
        select(CrmActivity)
        .where(CrmActivity.contact_id == cid)
        .order_by(CrmActivity.occurred_at.desc())
        .limit(DETAIL_LIMIT)
    )
    return ContactDetail(
        contact=ContactOut.model_validate(contact),
        properties=[
            PropertyOut.model_validate(p).model_copy(update={"link_status": link})
            for p, link in properties
        ],
        enquiries=[_enquiry_out(e, pid, title) for e, pid, title in enquiries],
        bookings=[BookingOut.model_validate(b) for b in bookings],
        membership=MembershipOut.model_validate(membership) if membership else None,
        notes=[NoteOut.model_validate(n) for n in notes],
        interactions=[InteractionOut.model_validate(i) for i in interactions],
        activity=[ActivityOut.model_validate(a) for a in activity],
    )


async def add_note(session: AsyncSession, ref: str, note: NoteIn, author: str) -> NoteOut:
    contact = await find_contact(session, ref)
    now = utcnow()
    row = CrmNote(
        id=new_id(),
        contact_id=contact.id,
        note_type=note.note_type.value,
        priority=note.priority.value,
        content=note.content,
        reminder_date=note.reminder_date,
        created_by=author,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return NoteOut.model_validate(row)


# -- enquiries ----------------------------------------------------------------------------


def _enquiries_select() -> Select[CrmEnquiry, str, str | None]:
    return select(CrmEnquiry, CrmProperty.property_id, CrmProperty.title).outerjoin(
        CrmProperty, CrmProperty.id == CrmEnquiry.crm_property_id
    )


def _enquiry_out(
    enquiry: CrmEnquiry, property_id: str | None, property_title: str | None
) -> EnquiryOut:
    return EnquiryOut.model_validate(enquiry).model_copy(
        update={"property_id": property_id, "property_title": property_title}
    )


async def list_enquiries(
    session: AsyncSession,
    *,
    status: str | None,
    owner_contact_id: str | None,
    cursor: str | None,
    limit: int,
    include_deleted: bool = False,
) -> EnquiryPage:
    stmt = _enquiries_select().where(*_live(CrmEnquiry, include_deleted))
    if status:
        stmt = stmt.where(CrmEnquiry.status == status)
    if owner_contact_id:
        stmt = stmt.where(CrmEnquiry.owner_contact_id == owner_contact_id)
    stmt = (
        stmt.where(*_after(CrmEnquiry, cursor))
        .order_by(*_newest_first(CrmEnquiry))
        .limit(limit + 1)
    )
    rows = list(await session.execute(stmt))
    return EnquiryPage(
        enquiries=[_enquiry_out(e, pid, title) for e, pid, title in rows[:limit]],
        next_cursor=_next_cursor([e for e, _, _ in rows], limit),
    )


async def _find_enquiry(session: AsyncSession, ref: str) -> CrmEnquiry:
    stmt = select(CrmEnquiry).where(or_(CrmEnquiry.id == ref, CrmEnquiry.enquiry_id == ref))
    if is_postgres(session):
        stmt = stmt.with_for_update()  # two status changes at once: one waits for the other
    enquiry = await session.scalar(stmt.limit(1))
    if enquiry is None:
        raise NotFound(f"enquiry {ref} is not in the internal CRM")
    return enquiry


async def update_enquiry_status(
    session: AsyncSession, ref: str, status: EnquiryStatus, note: str | None, author: str
) -> EnquiryOut:
    """Move an enquiry forward (new -> contacted -> qualified -> converted / lost), logging
    the change; asking for its current status again changes nothing."""
    enquiry = await _find_enquiry(session, ref)
    current = enquiry.status
    if status != current:
        allowed = [s.value for s in enquiry_next_statuses(current)]
        if status not in allowed:
            raise Conflict(
                f"enquiry {enquiry.enquiry_id} is {current}: it cannot go to {status.value}; "
                + (f"allowed: {', '.join(allowed)}" if allowed else f"{current} is final"),
                current=current,
                allowed=allowed,
            )
        now = utcnow()
        enquiry.status = status.value
        enquiry.status_changed_at = enquiry.updated_at = now
        contact = enquiry.owner_contact_id or enquiry.guest_contact_id
        session.add(
            CrmActivity(
                id=new_id(),
                contact_id=contact,
                entity_type="enquiry",
                entity_id=enquiry.id,
                activity_type="status_changed",
                title=f"Enquiry status: {current} → {status.value}",
                details=note,
                meta={"from": current, "to": status.value, "enquiryId": enquiry.enquiry_id},
                performed_by=author,
                occurred_at=now,
                created_at=now,
            )
        )
        if enquiry.guest_contact_id:
            session.add(
                CrmInteraction(
                    id=new_id(),
                    contact_id=enquiry.guest_contact_id,
                    crm_property_id=enquiry.crm_property_id,
                    crm_enquiry_id=enquiry.id,
                    type="status_change",
                    subject=f"Enquiry {current} → {status.value}",
                    content=note,
                    initiated_by=author,
                    created_at=now,
                )
            )
        await session.flush()
    _, property_id, title = (
        await session.execute(_enquiries_select().where(CrmEnquiry.id == enquiry.id))
    ).one()
    return _enquiry_out(enquiry, property_id, title)


# -- stats --------------------------------------------------------------------------------


async def _count(session: AsyncSession, model: type[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _by(session: AsyncSession, column: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).group_by(column))
    return {str(value) if value is not None else "none": int(n) for value, n in rows}


async def stats(session: AsyncSession) -> Stats:
    """Counts straight from the tables, and the failed deliveries of the last 24 hours."""
    now = utcnow()
    by_type = await _by(session, CrmContact.type)
    for kind in ContactType:
        by_type.setdefault(kind.value, 0)
    enquiries_by_status = await _by(session, CrmEnquiry.status)
    enquiries_total = sum(enquiries_by_status.values())
    converted = enquiries_by_status.get(EnquiryStatus.converted.value, 0)
    failed = await session.execute(
        select(SyncLog.provider, func.count())
        .where(
            SyncLog.status == LogStatus.failed.value,
            SyncLog.created_at >= now - timedelta(hours=24),
        )
        .group_by(SyncLog.provider)
    )
    failed_by_provider = {provider: int(n) for provider, n in failed}
    memberships_by_status = await _by(session, CrmMembership.status)
    return Stats(
        contacts=ContactStats(
            total=sum(by_type.values()),
            by_type=by_type,
            by_status=await _by(session, CrmContact.status),
        ),
        properties=PropertyStats(
            total=await _count(session, CrmProperty),
            by_listing_status=await _by(session, CrmProperty.listing_status),
            links_by_status=await _by(session, CrmPropertyLink.link_status),
        ),
        enquiries=EnquiryStats(
            total=enquiries_total,
            by_status=enquiries_by_status,
            conversion_rate=round(converted / enquiries_total, 4) if enquiries_total else 0.0,
        ),
        bookings=Counts(total=await _count(session, CrmBooking)),
        memberships=MembershipStats(
            total=sum(memberships_by_status.values()),
            by_status=memberships_by_status,
            by_tier=await _by(session, CrmMembership.plan_tier),
        ),
        notes=Counts(total=await _count(session, CrmNote)),
        interactions=Counts(total=await _count(session, CrmInteraction)),
        activity=Counts(total=await _count(session, CrmActivity)),
        sync=SyncStats(
            failed_last_24h=sum(failed_by_provider.values()),
            failed_last_24h_by_provider=failed_by_provider,
        ),
        generated_at=now,
    )
