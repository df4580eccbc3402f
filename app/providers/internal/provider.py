"""The internal CRM provider: one batch of one kind written by that kind's writer in one
transaction; a batch the database refuses is written again record by record."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import transaction, utcnow
from app.models import Operation
from app.providers.base import Action, Delivery, FailureKind, Outcome, Provider, ProviderError
from app.providers.internal.common import TABLES, Rejected, Result, Written
from app.providers.internal.contacts import write_owners
from app.providers.internal.deletes import delete_rows, forget_guest, restore_rows
from app.providers.internal.guest_records import write_bookings, write_enquiries
from app.providers.internal.memberships import write_memberships
from app.providers.internal.models import CrmContact
from app.providers.internal.properties import write_properties
from app.providers.internal.timeline import write_activities, write_notes
from app.records import SPECS, Kind, without_guest

log = logging.getLogger(__name__)


Writer = Callable[[AsyncSession, Sequence[Delivery], datetime], Awaitable[list[Result]]]

WRITERS: dict[Kind, Writer] = {
    Kind.owner: write_owners,
    Kind.property: write_properties,
    Kind.enquiry: write_enquiries,
    Kind.booking: write_bookings,
    Kind.membership: write_memberships,
    Kind.note: write_notes,
    Kind.activity: write_activities,
}


async def write(
    session: AsyncSession, kind: Kind, deliveries: Sequence[Delivery], now: datetime
) -> list[Result]:
    """One batch of one kind, in the caller's transaction; one result per delivery, in order."""
    results = await WRITERS[kind](session, deliveries, now)
    await session.flush()
    written = [
        d.record_id for d, r in zip(deliveries, results, strict=True) if isinstance(r, Written)
    ]
    await restore_rows(session, kind, written)
    return results


class InternalProvider(Provider):
    """Every kind, upserted by website id: delivering a batch again changes nothing. The CRM id
    of a record is its row's UUID."""

    name = "internal"
    batch_size = 500

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        results: list[Result | SQLAlchemyError]
        try:
            async with transaction(self.sessions) as session:
                results = list(await write(session, kind, deliveries, utcnow()))
        except SQLAlchemyError as exc:
            if len(deliveries) == 1:
                results = [exc]
            else:
                # One record the database refused must not hold back the rest: each again,
                # alone, so only that one fails.
                log.warning(
                    "internal: batch of %d %s failed (%s); writing one by one",
                    len(deliveries),
                    kind,
                    type(exc).__name__,
                )
                results = [await self._alone(kind, d) for d in deliveries]
        return [_outcome(kind, d, r) for d, r in zip(deliveries, results, strict=True)]

    async def delete(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Soft-deletes (see `deletes`); an erased guest's enquiry or booking is written again
        without the guest's details and the guest's contact removed. One transaction a batch;
        a database error fails the batch as transient (it is retried)."""
        now = utcnow()
        try:
            async with transaction(self.sessions) as session:
                results = await _remove(session, kind, deliveries, now)
        except SQLAlchemyError as exc:
            results = [exc for _ in deliveries]
        return [
            _outcome(kind, d, r, Action.delete) for d, r in zip(deliveries, results, strict=True)
        ]

    async def _alone(self, kind: Kind, delivery: Delivery) -> Result | SQLAlchemyError:
        try:
            async with transaction(self.sessions) as session:
                return (await write(session, kind, [delivery], utcnow()))[0]
        except SQLAlchemyError as exc:
            return exc

    async def check(self) -> bool:
        """The tables are there (migrated) and the database answers."""
        try:
            async with self.sessions() as session:
                await session.execute(select(CrmContact.id).limit(1))
        except SQLAlchemyError:
            return False
        return True


async def _remove(
    session: AsyncSession, kind: Kind, deliveries: Sequence[Delivery], now: datetime
) -> list[Result | SQLAlchemyError]:
    guests = [
        d for d in deliveries if d.operation is Operation.erase and kind in GUEST_RECORD_KINDS
    ]
    if not guests:
        return list(await delete_rows(session, kind, deliveries, now))
    blanked = [dataclasses.replace(d, data=without_guest(d.data)) for d in guests]
    written = await write(session, kind, blanked, now)
    for d in guests:
        await forget_guest(session, d.data.get("guestEmail"))
    by_id = dict(zip((d.record_id for d in guests), written, strict=True))
    rest = [d for d in deliveries if d.record_id not in by_id]
    removed = dict(
        zip((d.record_id for d in rest), await delete_rows(session, kind, rest, now), strict=True)
    )
    return [by_id.get(d.record_id) or removed[d.record_id] for d in deliveries]


GUEST_RECORD_KINDS = (Kind.enquiry, Kind.booking)


def _request(kind: Kind, delivery: Delivery) -> dict[str, Any]:
    request: dict[str, Any] = {
        "table": TABLES[kind],
        SPECS[kind].id_field: delivery.record_id,
        "data": delivery.data,
    }
    if delivery.parent_crm_id:
        request["parentId"] = delivery.parent_crm_id
    return request


def _bad_data(error: SQLAlchemyError) -> bool:
    """A value the database cannot store (SQLSTATE class 22: too long, out of range, a NUL in
    text) is the record's problem. Anything else (a lock, a lost connection, a race on a unique
    key) is worth another try."""
    if isinstance(error, DataError):
        return True
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def _outcome(
    kind: Kind,
    delivery: Delivery,
    result: Result | SQLAlchemyError,
    deleting: Action | None = None,
) -> Outcome:
    request = _request(kind, delivery)
    if deleting is not None:
        request["operation"] = delivery.operation.value
    if isinstance(result, Written):
        if deleting is not None:
            action = deleting
        elif result.created:
            action = Action.note if kind is Kind.note else Action.create
        else:
            action = Action.update
        return Outcome(
            crm_id=result.crm_id,
            action=action,
            request=request,
            response={
                "id": result.crm_id,
                "created": result.created,
                "changed": result.changed,
                **result.details,
            },
        )
    if isinstance(result, Rejected):
        error = ProviderError(
            FailureKind.rejected,
            f"internal: {result}",
            request=request,
            response={"error": str(result)},
        )
        return Outcome.failed(error, deleting or Action.upsert)
    failure = FailureKind.rejected if _bad_data(result) else FailureKind.transient
    orig = getattr(result, "orig", None)
    reason = str(orig) if orig is not None else str(result)
    reason = reason.strip().splitlines()[0] if reason.strip() else type(result).__name__
    error = ProviderError(
        failure,
        f"internal: database refused the {kind.value}: {reason}",
        request=request,
        response={"error": reason},
    )
    return Outcome.failed(error, deleting or Action.upsert)
