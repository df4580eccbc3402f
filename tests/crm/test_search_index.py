"""Acceptance 5: searching 100,000 contacts on PostgreSQL is served by an index."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from app.crm.service import contacts_query, like_pattern, plan_for_each_search

CONTACTS = 100_000
# Set-based: one statement makes every row (names carry an md5 fragment, so each is unique).
SEED = text(
    """
    INSERT INTO crm_contacts (id, user_id, type, status, name, email, created_at, updated_at)
    SELECT md5(i::text)::uuid::text,
           'user_' || i,
           CASE WHEN i % 4 = 0 THEN 'guest' ELSE 'owner' END,
           (ARRAY['active', 'inactive', 'suspended', 'pending'])[1 + i % 4],
           'Contact ' || substr(md5(i::text), 1, 10) || ' '
               || (ARRAY['Smith', 'Jones', 'Taylor', 'Brown', 'Wilson'])[1 + i % 5],
           'contact' || i || '@' || (ARRAY['example.com', 'mail.test', 'holiday.test'])[1 + i % 3],
           now() - make_interval(secs => i),
           now()
    FROM generate_series(1, :n) AS i
    """
)
TRIGRAM_INDEXES = {"ix_crm_contacts_name_trgm", "ix_crm_contacts_email_trgm"}


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _plan_after_repeats(session: Any, search: str) -> list[dict[str, Any]]:
    """PostgreSQL's plan for the query GET /api/crm/contacts?search= runs, as it stands after
    the statement has been prepared and run a few times (when PostgreSQL may switch a prepared
    statement to a generic plan), in a transaction set up the way the service sets it up."""
    await plan_for_each_search(session)
    conn = await session.connection()
    compiled = contacts_query(search="x", limit=50).compile(dialect=conn.dialect)
    await conn.exec_driver_sql(f"PREPARE contacts_search AS {compiled}")

    def execute(term: str) -> str:
        pattern = _quoted(like_pattern(term))
        return f"EXECUTE contacts_search({pattern}, {pattern}, 51)"

    for i in range(8):
        await conn.exec_driver_sql(execute(f"contact{1000 + i}@"))
    raw = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {execute(search)}")).scalar()
    await conn.exec_driver_sql("DEALLOCATE contacts_search")
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return list(_nodes(plan[0]["Plan"]))


@pytest.mark.slow
async def test_searching_100k_contacts_uses_the_trigram_indexes(
    ops, services, database_url
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the trigram indexes are PostgreSQL's (SQLite has no such index type)")
    async with services.engine.begin() as conn:
        await conn.execute(SEED, {"n": CONTACTS})
        await conn.execute(text("ANALYZE crm_contacts"))
        assert await conn.scalar(text("SELECT count(*) FROM crm_contacts")) == CONTACTS

    name_part = hashlib.md5(b"4242").hexdigest()[:10]
    for search in ("contact77777@", name_part, name_part.upper()):
        async with services.sessions() as session, session.begin():
            nodes = await _plan_after_repeats(session, search)
        used = {n["Index Name"] for n in nodes if "Index Name" in n}
        assert used >= TRIGRAM_INDEXES, (search, nodes)
        assert not any(n["Node Type"] == "Seq Scan" for n in nodes), (search, nodes)

    by_email = await ops.get("/api/crm/contacts", params={"search": "contact77777@"})
    assert [c["userId"] for c in by_email.json()["contacts"]] == ["user_77777"]
    by_name = await ops.get("/api/crm/contacts", params={"search": name_part.upper()})
    assert [c["userId"] for c in by_name.json()["contacts"]] == ["user_4242"]
