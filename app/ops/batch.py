"""Batch import: up to 1,000 records of one kind, each accepted or rejected with its reason; the
accepted ones stored and their jobs queued in the caller's one transaction, set-based."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import AppError, InvalidInput, validation_errors
from app.models import Record
from app.records import SPECS, FieldError, Kind, content_hash, normalise, parent_of
from app.sync.service import enqueue, is_postgres

MAX_RECORDS = 1000


class TooLarge(AppError):
    status_code = 413


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int  # position in the array sent
    id: str | None  # the record's id, when it had a usable one
    field: str
    error: str

    def view(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "field": self.field, "error": self.error}


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    queued: int = 0  # jobs queued (a record unchanged everywhere needs none)
    rejections: list[Rejection] = field(default_factory=list)


def parse_array(raw: bytes) -> list[Any]:
    """The body as a JSON array of at most MAX_RECORDS items, or a clear 4xx naming `body`."""
    try:
        items = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AppError("body: not valid JSON", field="body") from None
    if not isinstance(items, list):
        raise InvalidInput("body", "expected a JSON array of records")
    if len(items) > MAX_RECORDS:
        raise TooLarge(
            f"body: {len(items):,} records sent; at most {MAX_RECORDS:,} per request "
            "(split the array, or use POST /api/crm/sync/bulk to resync stored records)",
            field="body",
            limit=MAX_RECORDS,
        )
    return items


def _validate(kind: Kind, index: int, item: Any) -> dict[str, Any] | Rejection:
    spec = SPECS[kind]
    if not isinstance(item, dict):
        return Rejection(index, None, "body", f"expected a JSON object, got {type(item).__name__}")
    raw_id = item.get(spec.id_field)
    usable = isinstance(raw_id, str | int) and not isinstance(raw_id, bool)
    shown_id = str(raw_id) if usable else None
    try:
        model = spec.model.model_validate(item)
    except ValidationError as exc:
        first = validation_errors(list(exc.errors()))[0]
        return Rejection(index, shown_id, first["field"], first["message"])
    fields: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True)
    return fields


async def accept_batch(
    session: AsyncSession,
    kind: Kind,
    items: Sequence[Any],
    providers: Sequence[str],
    region: str,
) -> BatchResult:
    """Validate each item like POST /api/crm/sync/{kind} would (a body with only the id
    re-syncs the stored snapshot), merge with what is stored, upsert the changed snapshots in
    one statement and queue their jobs with one INSERT ... SELECT per provider."""
    spec = SPECS[kind]
    result = BatchResult()
    valid: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(items):
        checked = _validate(kind, index, item)
        if isinstance(checked, Rejection):
            result.rejections.append(checked)
        else:
            valid.append((index, checked))
    if not valid:
        return result

    wanted = {str(fields[spec.id_field]) for _, fields in valid}
    stmt = select(Record).where(Record.kind == kind.value, Record.external_id.in_(wanted))
    if is_postgres(session):
        stmt = stmt.with_for_update()
    stored = {r.external_id: r for r in await session.scalars(stmt)}

    snapshots = {eid: record.data for eid, record in stored.items()}
    resync: set[str] = set()  # only the id was sent: retry even a rejected snapshot
    fresh: set[str] = set()
    for index, fields in valid:
        external_id = str(fields[spec.id_field])
        only_id = set(fields) <= {spec.id_field}
        current = snapshots.get(external_id)
        if current is None and only_id:
            result.rejections.append(
                Rejection(
                    index,
                    external_id,
                    spec.id_field,
                    f"{spec.label} {external_id} has not been synced before; send its fields",
                )
            )
            continue
        try:
            snapshots[external_id] = normalise(spec, {**(current or {}), **fields}, region)
        except FieldError as exc:
            result.rejections.append(Rejection(index, external_id, exc.field, exc.message))
            continue
        (resync if only_id else fresh).add(external_id)
        result.accepted += 1
    result.rejections.sort(key=lambda r: r.index)

    await _upsert(session, kind, {e: snapshots[e] for e in resync | fresh}, stored)
    for ids, retry in ((fresh - resync, False), (resync, True)):
        if ids:
            chosen = select(Record.id).where(Record.kind == kind.value, Record.external_id.in_(ids))
            result.queued += await enqueue(session, chosen, providers, retry_failed=retry)
    return result


async def _upsert(
    session: AsyncSession,
    kind: Kind,
    snapshots: dict[str, dict[str, Any]],
    stored: dict[str, Record],
) -> None:
    """One multi-row INSERT ... ON CONFLICT for the snapshots that are new or changed."""
    spec = SPECS[kind]
    now = utcnow()
    rows = []
    for external_id, snapshot in snapshots.items():
        digest = content_hash(snapshot)
        existing = stored.get(external_id)
        if existing is not None and existing.content_hash == digest:
            continue
        parent = parent_of(spec, snapshot)
        rows.append(
            {
                "kind": kind.value,
                "external_id": external_id,
                "data": snapshot,
                "content_hash": digest,
                "parent_kind": parent[0].value if parent else None,
                "parent_id": parent[1] if parent else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not rows:
        return
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    stmt = insert(Record).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "external_id"],
        set_={
            "data": stmt.excluded.data,
            "content_hash": stmt.excluded.content_hash,
            "parent_kind": stmt.excluded.parent_kind,
            "parent_id": stmt.excluded.parent_id,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await session.execute(stmt)
