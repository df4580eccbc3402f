"""bench_erase: how long an erasure's scrub takes (the scan of every text and JSON column of
every table for one person) over a sync log of BENCH_ERASE_ROWS rows (default 100,000) and a
tenth as many owner records, on PostgreSQL. One person is named by 20 log rows and one record."""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import insert

from app import models  # noqa: F401 - registers the tables
from app.db import make_engine, make_sessionmaker, transaction, utcnow
from app.models import Record, SyncLog
from app.ops import models as ops_models  # noqa: F401
from app.ops.scrub import Needles, scrub_everywhere
from app.providers import ratelimit  # noqa: F401
from app.providers.internal import models as crm_models  # noqa: F401
from app.pull import models as pull_models  # noqa: F401
from app.records import content_hash
from app.webhooks import models as webhook_models  # noqa: F401
from bench.common import fresh_database, say

TARGET = {"name": "Zed Target", "email": "zed.target@example.com", "phone": "+447911123456"}


def _person(n: int) -> dict[str, Any]:
    return {"name": f"Person {n}", "email": f"person{n}@example.com", "phone": f"+4477009{n:05d}"}


async def main() -> None:
    rows = int(os.environ.get("BENCH_ERASE_ROWS", "100000"))
    url = await fresh_database()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = utcnow()
    for start in range(0, rows, 5000):
        batch = []
        for n in range(start, min(start + 5000, rows)):
            who = TARGET if n % (rows // 20) == 0 else _person(n)
            batch.append(
                {
                    "created_at": now,
                    "provider": "hubspot",
                    "entity_type": "owner",
                    "entity_id": f"u{n}",
                    "action": "upsert",
                    "status": "success",
                    "request": {"path": "/crm/v3/objects/contacts/batch/upsert", "input": who},
                    "response": {"id": str(n), "properties": who},
                    "attempt": 1,
                }
            )
        async with transaction(sessions) as session:
            await session.execute(insert(SyncLog), batch)
    records = [
        {
            "kind": "owner",
            "external_id": f"u{n}",
            "data": (data := {"userId": f"u{n}", **(TARGET if n == 7 else _person(n))}),
            "content_hash": content_hash(data),
            "created_at": now,
            "updated_at": now,
        }
        for n in range(rows // 10)
    ]
    async with transaction(sessions) as session:
        for start in range(0, len(records), 5000):
            await session.execute(insert(Record), records[start : start + 5000])
    needles = Needles.of(emails=[TARGET["email"]], names=[TARGET["name"]], phones=[TARGET["phone"]])
    started = time.perf_counter()
    async with transaction(sessions) as session:
        counts = await scrub_everywhere(session, needles)
    seconds = time.perf_counter() - started
    await engine.dispose()
    say(
        f"scrub of one person over {rows:,} sync-log rows and {rows // 10:,} records "
        f"(every text and JSON column of every table, PostgreSQL): {seconds:.2f} s; "
        f"rows changed {counts}"
    )
