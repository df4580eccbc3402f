"""The internal CRM: write throughput of the `internal` provider, and contact search on 100k rows.

`python -m bench internal` (or `make bench`). SQLite in a temporary file, and PostgreSQL when
BENCH_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres) answers: a scratch
database is made and dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text

from app.crm.service import contacts_query, list_contacts
from app.db import make_engine, make_sessionmaker
from app.migrate import upgrade
from app.providers.base import Delivery
from app.providers.internal.provider import InternalProvider
from app.records import SPECS, Kind, normalise

RECORDS = 5_000
CONTACTS = 100_000
SEARCHES = 50
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "crm_sync_bench_internal"


def _delivery(kind: Kind, data: dict[str, Any], parent: str | None, n: int) -> Delivery:
    spec = SPECS[kind]
    return Delivery(
        job_id=n,
        kind=kind,
        record_id=str(data[spec.id_field]),
        data=normalise(spec, data, "GB"),
        crm_id=None,
        parent_crm_id=parent,
        idempotency_key=f"bench-{n}",
    )


async def _timed_batches(
    provider: InternalProvider, kind: Kind, deliveries: list[Delivery]
) -> tuple[float, list[str]]:
    started = time.perf_counter()
    ids: list[str] = []
    for i in range(0, len(deliveries), provider.batch_size):
        outcomes = await provider.deliver(kind, deliveries[i : i + provider.batch_size])
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if o.error][:1]
        ids += [o.crm_id or "" for o in outcomes]
    return time.perf_counter() - started, ids


async def _throughput(url: str) -> None:
    engine = make_engine(url)
    provider = InternalProvider(make_sessionmaker(engine))
    owners = [
        _delivery(
            Kind.owner,
            {"userId": f"u{i}", "name": f"Owner {i}", "email": f"owner{i}@example.com"},
            None,
            i,
        )
        for i in range(RECORDS)
    ]
    seconds, owner_ids = await _timed_batches(provider, Kind.owner, owners)
    print(f"  owners, new:         {RECORDS / seconds:8.0f} records/s")
    seconds, _ = await _timed_batches(provider, Kind.owner, owners)
    print(f"  owners, again:       {RECORDS / seconds:8.0f} records/s (nothing changes)")
    props = [
        _delivery(Kind.property, {"propertyId": f"p{i}", "ownerId": f"u{i}", "status": "approved"},
                  owner_ids[i], i)
        for i in range(RECORDS)
    ]  # fmt: skip
    seconds, prop_ids = await _timed_batches(provider, Kind.property, props)
    print(f"  properties + links:  {RECORDS / seconds:8.0f} records/s")
    enquiries = [
        _delivery(
            Kind.enquiry,
            {
                "enquiryId": f"e{i}",
                "propertyId": f"p{i % 500}",
                "guestEmail": f"guest{i % 2000}@example.com",
                "message": "Is it free?",
            },
            prop_ids[i % 500],
            i,
        )
        for i in range(RECORDS)
    ]
    seconds, _ = await _timed_batches(provider, Kind.enquiry, enquiries)
    print(f"  enquiries (+guest, interaction, activity, count): {RECORDS / seconds:6.0f} records/s")
    await engine.dispose()


SEED = text(
    """
    INSERT INTO crm_contacts (id, user_id, type, status, name, email, created_at, updated_at)
    SELECT md5(i::text)::uuid::text, 'user_' || i,
           CASE WHEN i % 4 = 0 THEN 'guest' ELSE 'owner' END,
           (ARRAY['active', 'inactive', 'suspended', 'pending'])[1 + i % 4],
           'Contact ' || substr(md5(i::text), 1, 10) || ' '
               || (ARRAY['Smith', 'Jones', 'Taylor', 'Brown', 'Wilson'])[1 + i % 5],
           'contact' || i || '@' || (ARRAY['example.com', 'mail.test', 'holiday.test'])[1 + i % 3],
           now() - make_interval(secs => i), now()
    FROM generate_series(1, :n) AS i
    """
)


async def _search(url: str) -> None:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE crm_contacts CASCADE"))
        await conn.execute(SEED, {"n": CONTACTS})
        await conn.execute(text("ANALYZE crm_contacts"))
    rare_names = [hashlib.md5(str(i).encode()).hexdigest()[2:9] for i in range(1, SEARCHES + 1)]
    rare_emails = [f"contact{i * 997}@" for i in range(1, SEARCHES + 1)]

    async def as_served(term: str) -> int:
        # One request: its own transaction, through the service (custom plans for search).
        async with sessions() as session, session.begin():
            page = await list_contacts(
                session, contact_type=None, status=None, search=term, cursor=None, limit=50
            )
        return len(page.contacts)

    async def generic_plans_allowed(term: str) -> int:
        # The same query without the service's planning setting, for comparison.
        async with sessions() as session:
            return len(list(await session.scalars(contacts_query(search=term, limit=50))))

    for label, terms, run in (
        ("a name fragment (1 match)", rare_names, as_served),
        ("an email (1 match)", rare_emails, as_served),
        ("a common surname (20k)", ["smith"] * SEARCHES, as_served),
        ("an email, generic plans allowed", rare_emails, generic_plans_allowed),
    ):
        times = []
        for term in terms:
            started = time.perf_counter()
            assert await run(term)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(
            f"  search {label}: p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms "
            f"over {CONTACTS:,} contacts"
        )
    await engine.dispose()


async def _pg_url() -> str | None:
    try:
        conn = await asyncpg.connect(PG_ADMIN)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        await conn.close()
    host = PG_ADMIN.split("@", 1)[1].rsplit("/", 1)[0]
    user = PG_ADMIN.split("//", 1)[1].split("@", 1)[0]
    return f"postgresql+asyncpg://{user}@{host}/{PG_DB}"


async def _drop_pg() -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        print(f"SQLite, {RECORDS:,} records in batches of {InternalProvider.batch_size}:")
        asyncio.run(_throughput(url))
    pg = asyncio.run(_pg_url())
    if pg is None:
        print("PostgreSQL not reachable: skipped")
        return
    try:
        upgrade(pg)
        print(f"PostgreSQL, {RECORDS:,} records in batches of {InternalProvider.batch_size}:")
        asyncio.run(_throughput(pg))
        print("PostgreSQL contact search (GET /api/crm/contacts?search=, the service's query):")
        asyncio.run(_search(pg))
    finally:
        asyncio.run(_drop_pg())
