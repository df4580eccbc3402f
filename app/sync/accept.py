"""The one accept path: records of one kind (a single record is a batch of one) merged into their
stored snapshots, upserted, and their jobs queued, all in the caller's transaction.

Each record is checked on its own: a record that cannot be accepted is a Rejection with its
position, id, field and reason, and nothing of it is written. Concurrent accepts of the same new
record coalesce: the second waits for the first's row and merges onto it, never a unique-key
error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect_insert, is_postgres, utcnow
from app.errors import AppError, InvalidInput, NotFound, validation_errors
from app.inputs import loads, problem, text_problem
from app.models import Record
from app.records import SPECS, FieldError, Kind, content_hash, normalise, parent_of
from app.sync.outbox import enqueue
from app.webhooks.inbox import requeue_waiting_for

MAX_BATCH = 1000


class TooLarge(AppError):
    status_code = 413


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one record of a batch was not accepted (nothing of it was written)."""

    index: int  # position in the array sent
    id: str | None  # the record's website id, when it had a usable one
    field: str
    error: str
    status_code: int = 422  # 404: a body with only the id, for a record never sent

    def raise_(self) -> None:
        if self.status_code == 404:
            raise NotFound(self.error)
        raise InvalidInput(self.field, self.error)


@dataclass(frozen=True, slots=True)
class Stored:
    """An accepted record as it now stands."""

    id: int  # records.id
    external_id: str  # the website's id
    content_hash: str
    changed: bool  # its content changed with this accept


@dataclass(slots=True)
class Accepted:
    """What an accept did: the records stored (by position sent), jobs queued, rejections."""

    stored: dict[int, Stored] = field(default_factory=dict)
    queued: int = 0  # jobs queued (a record every provider already confirmed needs none)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.stored)


def parse_batch(raw: bytes) -> list[Any]:
    """A batch body: a JSON array of at most MAX_BATCH items, or a 4xx naming `body`. Items
    are checked one by one (validate), so one bad item never costs the others."""
    items = loads(raw)
    if not isinstance(items, list):
        raise InvalidInput("body", "expected a JSON array of records")
    if len(items) > MAX_BATCH:
        raise TooLarge(
            f"body: {len(items):,} records sent; at most {MAX_BATCH:,} per request "
            "(split the array, or use POST /api/crm/sync/bulk to resync stored records)",
            field="body",
            limit=MAX_BATCH,
        )
    return items


def validate(kind: Kind, index: int, item: Any) -> dict[str, Any] | Rejection:
    """One batch item checked exactly as POST /api/crm/sync/{kind} checks its body: the fields
    it sent (its model's dump), or why not."""
    spec = SPECS[kind]
    if not isinstance(item, dict):
        return Rejection(index, None, "body", f"expected a JSON object, got {type(item).__name__}")
    raw_id = item.get(spec.id_field)
    usable = isinstance(raw_id, str | int) and not isinstance(raw_id, bool)
    shown_id = str(raw_id) if usable and not text_problem(str(raw_id)) else None
    if found := problem(item):
        return Rejection(index, shown_id, *found)
    try:
        model = spec.model.model_validate(item)
    except ValidationError as exc:
        first = validation_errors(list(exc.errors()))[0]
        return Rejection(index, shown_id, first["field"], first["message"])
    fields: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)
    return fields


async def accept(
    session: AsyncSession,
    kind: Kind,
    items: Sequence[tuple[int, dict[str, Any]]],
    providers: Sequence[str],
    region: str,
    *,
    force: bool = False,
) -> Accepted:
    """Accept validated records of `kind`: `items` are (position, fields) pairs, fields as the
    kind's model dumped them. Fields merge into the stored snapshot (an explicit null clears
    one); a record sent with only its id is an explicit re-sync, which also retries content a
    provider rejected. Stripe events waiting for an owner accepted here are queued again."""
    spec = SPECS[kind]
    result = Accepted()
    by_id: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for index, fields in items:
        by_id.setdefault(str(fields[spec.id_field]), []).append((index, fields))
    if not by_id:
        return result

    stored = await _lock_stored(session, kind, list(by_id))
    merged, rejections = _merge(kind, by_id, stored, region)
    fresh = {eid: m for eid, m in merged.items() if eid not in stored}
    inserted = await _insert_new(session, kind, fresh)
    raced = [eid for eid in fresh if eid not in inserted]
    if raced:
        # Another transaction made these records between our read and our insert (it has
        # committed: ON CONFLICT waited for it). Merge onto what it stored, as if we came second.
        stored |= await _lock_stored(session, kind, raced)
        again, more = _merge(kind, {e: by_id[e] for e in raced}, stored, region)
        merged |= again
        rejections = [r for r in rejections if r.id not in raced] + more
    await _update_changed(session, kind, merged, stored)

    resync: list[int] = []
    plain: list[int] = []
    for eid, m in merged.items():
        record_id = inserted.get(eid) or stored[eid][0]
        for index in m.indexes:
            result.stored[index] = Stored(record_id, eid, m.digest, m.changed)
        (resync if m.only_id else plain).append(record_id)
    # A deleted record sent again is back: created anew at every provider, whatever they had.
    revived = await _undelete(
        session, [stored[eid][0] for eid in merged if eid in stored and stored[eid][3]]
    )
    plain, resync = [i for i in plain if i not in revived], [i for i in resync if i not in revived]
    groups = ((plain, False, force), (resync, True, force), (revived, True, True))
    for ids, retry, forced in groups:
        if ids:
            result.queued += await enqueue(
                session, ids, providers, force=forced, retry_failed=retry
            )
    result.rejections = sorted(rejections, key=lambda r: r.index)
    await _release_waiting_events(session, kind, merged)
    return result


async def accept_one(
    session: AsyncSession,
    kind: Kind,
    fields: dict[str, Any],
    providers: Sequence[str],
    region: str,
    *,
    force: bool = False,
) -> tuple[Stored, int]:
    """One record (a batch of one): the stored record and the jobs queued. Raises InvalidInput
    (422, naming the field) or NotFound (404: only the id, for a record never sent)."""
    result = await accept(session, kind, [(0, fields)], providers, region, force=force)
    if result.rejections:
        result.rejections[0].raise_()
    return result.stored[0], result.queued


async def load_record(
    session: AsyncSession, kind: Kind, external_id: str, *, for_update: bool = False
) -> Record | None:
    """A stored record by its website id; `for_update` locks it (PostgreSQL)."""
    stmt = select(Record).where(Record.kind == kind.value, Record.external_id == external_id)
    if for_update and is_postgres(session):
        stmt = stmt.with_for_update(key_share=True)
    return (await session.scalars(stmt)).one_or_none()


# -- the steps -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Merged:
    snapshot: dict[str, Any]
    digest: str
    changed: bool
    only_id: bool  # every item for this record sent only its id
    indexes: list[int]


StoredRow = tuple[int, dict[str, Any], str, bool]  # records.id, data, content_hash, deleted


async def _lock_stored(
    session: AsyncSession, kind: Kind, external_ids: Sequence[str]
) -> dict[str, StoredRow]:
    """The stored snapshots, locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
    writers) so a concurrent accept of the same record merges after us, not over us."""
    stmt = select(
        Record.id,
        Record.external_id,
        Record.data,
        Record.content_hash,
        Record.deleted_at.is_not(None),
    ).where(Record.kind == kind.value, Record.external_id.in_(list(external_ids)))
    if is_postgres(session):
        # FOR NO KEY UPDATE: accepts of one record queue behind each other, while the worker's
        # links (whose foreign key takes KEY SHARE on the record) never wait for us. With a
        # plain FOR UPDATE an accept holding the record and waiting for its job deadlocked
        # with a worker holding the job and inserting the record's link.
        stmt = stmt.with_for_update(key_share=True)
    return {
        eid: (rid, data, digest, bool(deleted))
        for rid, eid, data, digest, deleted in await session.execute(stmt)
    }


def _merge(
    kind: Kind,
    by_id: dict[str, list[tuple[int, dict[str, Any]]]],
    stored: dict[str, StoredRow],
    region: str,
) -> tuple[dict[str, _Merged], list[Rejection]]:
    """Each record's items applied in order onto its stored snapshot; an item that fails
    normalisation is rejected alone (the record keeps the items before it)."""
    spec = SPECS[kind]
    merged: dict[str, _Merged] = {}
    rejections: list[Rejection] = []
    for eid, items in by_id.items():
        row = stored.get(eid)
        current = row[1] if row else None
        accepted: list[int] = []
        only_id = True
        for index, fields in items:
            sent_only_id = set(fields) <= {spec.id_field}
            if current is None and sent_only_id:
                rejections.append(
                    Rejection(
                        index,
                        eid,
                        spec.id_field,
                        f"{spec.label} {eid} has not been synced before; send its fields",
                        404,
                    )
                )
                continue
            try:
                current = normalise(spec, {**(current or {}), **fields}, region)
            except FieldError as exc:
                rejections.append(Rejection(index, eid, exc.field, exc.message))
                continue
            accepted.append(index)
            only_id = only_id and sent_only_id
        if not accepted or current is None:
            continue
        digest = content_hash(current)
        changed = row is None or row[2] != digest
        merged[eid] = _Merged(current, digest, changed, only_id, accepted)
    return merged, rejections


def _row(kind: Kind, external_id: str, m: _Merged) -> dict[str, Any]:
    parent = parent_of(SPECS[kind], m.snapshot)
    return {
        "kind": kind.value,
        "external_id": external_id,
        "data": m.snapshot,
        "content_hash": m.digest,
        "parent_kind": parent[0].value if parent else None,
        "parent_id": parent[1] if parent else None,
    }


async def _insert_new(
    session: AsyncSession, kind: Kind, fresh: dict[str, _Merged]
) -> dict[str, int]:
    """INSERT ... ON CONFLICT DO NOTHING the new records; returns the ids of those inserted
    (a record another transaction inserted first is left out, to be merged onto)."""
    if not fresh:
        return {}
    now = utcnow()
    rows = [
        {**_row(kind, eid, m), "created_at": now, "updated_at": now} for eid, m in fresh.items()
    ]
    stmt = (
        dialect_insert(session)(Record)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["kind", "external_id"])
        .returning(Record.id, Record.external_id)
    )
    return {eid: rid for rid, eid in await session.execute(stmt)}


async def _update_changed(
    session: AsyncSession, kind: Kind, merged: dict[str, _Merged], stored: dict[str, StoredRow]
) -> None:
    """One executemany UPDATE of the stored records whose content changed."""
    now = utcnow()
    rows = [
        {f"b_{k}": v for k, v in _row(kind, eid, m).items() if k not in ("kind", "external_id")}
        | {"rid": stored[eid][0], "now": now}
        for eid, m in merged.items()
        if eid in stored and m.changed
    ]
    if rows:
        await session.execute(_UPDATE_RECORD, rows)


_RECORDS = cast(Table, Record.__table__)
# Built once: an executemany UPDATE by primary key (bind names may not be column names).
_UPDATE_RECORD = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("rid"))
    .values(
        data=bindparam("b_data", type_=_RECORDS.c.data.type),
        content_hash=bindparam("b_content_hash"),
        parent_kind=bindparam("b_parent_kind"),
        parent_id=bindparam("b_parent_id"),
        updated_at=bindparam("now", type_=_RECORDS.c.updated_at.type),
    )
)


async def _undelete(session: AsyncSession, record_ids: list[int]) -> list[int]:
    """Clear the deleted marker of these (deleted) records; returns their ids. No statement at
    all for the usual accept, where none was deleted."""
    if not record_ids:
        return []
    revived = await session.scalars(
        update(Record)
        .where(Record.id.in_(record_ids), Record.deleted_at.is_not(None))
        .values(deleted_at=None)
        .returning(Record.id)
        .execution_options(synchronize_session=False)
    )
    return list(revived)


async def _release_waiting_events(
    session: AsyncSession, kind: Kind, merged: dict[str, _Merged]
) -> None:
    """Stripe events that named an owner (or a Stripe customer) before we knew it can be
    applied now: an owner arrived, or a membership saying whose a customer is."""
    if kind is Kind.owner:
        await requeue_waiting_for(session, owner_ids=list(merged), with_memberships=True)
    elif kind is Kind.membership:
        customers = [
            c
            for m in merged.values()
            if isinstance(c := m.snapshot.get("stripeCustomerId"), str) and c
        ]
        await requeue_waiting_for(session, customer_ids=customers)
