"""The migrated CRM tables: an index on every foreign key, unique website ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

from app.db import make_engine
from tests.crm.tables import CRM_TABLES

WEBSITE_IDS = {
    "crm_contacts": "user_id",
    "crm_properties": "property_id",
    "crm_enquiries": "enquiry_id",
    "crm_bookings": "booking_id",
    "crm_memberships": "user_id",
    "crm_notes": "note_id",
    "crm_activity_log": "activity_id",
}


def _describe(conn: Any) -> dict[str, dict[str, Any]]:
    schema = inspect(conn)
    out = {}
    for table in CRM_TABLES:
        name = table.name
        leading = {tuple(ix["column_names"])[:1] for ix in schema.get_indexes(name)}
        leading |= {tuple(uq["column_names"])[:1] for uq in schema.get_unique_constraints(name)}
        leading |= {tuple(schema.get_pk_constraint(name)["constrained_columns"])[:1]}
        unique = {tuple(uq["column_names"]) for uq in schema.get_unique_constraints(name)}
        unique |= {tuple(ix["column_names"]) for ix in schema.get_indexes(name) if ix["unique"]}
        fks = [fk["constrained_columns"][0] for fk in schema.get_foreign_keys(name)]
        out[name] = {"leading": leading, "unique": unique, "fks": fks}
    return out


async def test_every_foreign_key_is_indexed_and_website_ids_are_unique(db_url) -> None:
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(_describe)
    await engine.dispose()
    assert sorted(tables) == sorted(t.name for t in CRM_TABLES)
    unindexed = [
        f"{name}.{fk}" for name, t in tables.items() for fk in t["fks"] if (fk,) not in t["leading"]
    ]
    assert unindexed == []
    assert sum(len(t["fks"]) for t in tables.values()) == 15  # all of them were seen
    for name, column in WEBSITE_IDS.items():
        assert (column,) in tables[name]["unique"], name
