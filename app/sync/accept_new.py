"""The accept path's common case in one round trip: a record never seen before, on PostgreSQL.

One statement (data-modifying CTEs, so one implicit transaction) inserts the record, queues its
job for every provider and, for owners and memberships, queues again the Stripe events that
were waiting for them. If the record is already stored (the insert's ON CONFLICT DO NOTHING
returns nothing), nothing is written and the caller takes the general path of accept.py, which
merges onto the stored snapshot. The statement's text is built once; asyncpg, called directly
(no SQLAlchemy execute on this path), prepares it once per connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.errors import InvalidInput
from app.models import JobStatus, Operation
from app.records import SPECS, FieldError, Kind, content_hash, normalise, parent_of
from app.redaction import scrub_parameters
from app.sync.accept import Stored

_INSERT = """
WITH new_record AS (
    INSERT INTO records
        (kind, external_id, data, content_hash, parent_kind, parent_id, created_at, updated_at)
    VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $7)
    ON CONFLICT (kind, external_id) DO NOTHING
    RETURNING id
), jobs AS (
    INSERT INTO sync_jobs
        (record_id, provider, status, operation, attempts, deferrals, run_after, requeue, force,
         created_at, updated_at)
    SELECT new_record.id, p.provider, '{queued}', '{upsert}', 0, 0, $7, false, false, $7, $7
    FROM new_record CROSS JOIN unnest($8::text[]) AS p (provider)
    RETURNING id
){released}
SELECT (SELECT id FROM new_record) AS id, (SELECT count(*) FROM jobs) AS queued
"""
# Stripe events waiting for this owner (or for a customer on its membership), as
# webhooks.inbox.requeue_waiting_for queues them.
_RELEASE = """, released AS (
    UPDATE webhook_events
    SET status = 'received', reason = 'its owner is known now: queued again', attempts = 0,
        run_after = $7
    WHERE status = 'unmatched' AND EXISTS (SELECT 1 FROM new_record) AND ({which})
    RETURNING id
)"""
_OWNER_EVENTS = """owner_id = $2 OR (owner_id IS NULL AND customer_id IN (
        SELECT data ->> 'stripeCustomerId' FROM records
        WHERE kind = 'membership' AND external_id = $2))"""
_CUSTOMER_EVENTS = "owner_id IS NULL AND customer_id = $9"


def _statement(release: str | None) -> str:
    return _INSERT.format(
        queued=JobStatus.queued.value,
        upsert=Operation.upsert.value,
        released=_RELEASE.format(which=release) if release else "",
    )


_PLAIN = _statement(None)
_OWNER = _statement(_OWNER_EVENTS)
_MEMBERSHIP = _statement(_CUSTOMER_EVENTS)


async def accept_new(
    engine: AsyncEngine,
    kind: Kind,
    fields: dict[str, Any],
    providers: Sequence[str],
    region: str,
) -> tuple[Stored, int] | None:
    """Store a record never sent before and queue its jobs, in one autocommitted statement:
    the stored record and the jobs queued (one per provider). None when this cannot be the
    common case (SQLite, a body with only the id) or the record exists: nothing is written,
    and accept.accept takes it. Raises InvalidInput (422, naming the field)."""
    spec = SPECS[kind]
    if engine.dialect.name != "postgresql" or set(fields) <= {spec.id_field}:
        return None
    try:
        snapshot = normalise(spec, fields, region)
    except FieldError as exc:
        raise InvalidInput(exc.field, exc.message) from None
    external_id = str(fields[spec.id_field])
    digest = content_hash(snapshot)
    parent = parent_of(spec, snapshot)
    params: list[Any] = [
        kind.value,
        external_id,
        json.dumps(snapshot),
        digest,
        parent[0].value if parent else None,
        parent[1] if parent else None,
        utcnow(),
        list(providers),
    ]
    statement = _PLAIN
    if kind is Kind.owner:
        statement = _OWNER
    elif kind is Kind.membership and isinstance(snapshot.get("stripeCustomerId"), str):
        statement = _MEMBERSHIP
        params.append(snapshot["stripeCustomerId"])
    async with engine.connect() as conn:
        # The driver's own connection, outside any transaction: the statement autocommits, and
        # asyncpg prepares it once per connection. Its errors are asyncpg's (app.runtime's
        # is_outage knows the outage kinds); secrets are blanked as for every other write.
        driver: Any = (await conn.get_raw_connection()).driver_connection
        row = await driver.fetchrow(statement, *scrub_parameters(engine, params))
    if row["id"] is None:
        return None
    return Stored(row["id"], external_id, digest, changed=True), int(row["queued"])
