"""Scrubbing a person out of every table we keep: every text and JSON column of every table in
the metadata (so a table added later is scrubbed too), found with one query per table, each
occurrence blanked in place.

What counts as an occurrence (`Needles`): an email, a full name or a phone number anywhere in a
value, case-insensitive (`[erased]` in its place); a single name part ("Ann", "Smith") only as a
whole value, case-sensitive and three letters or more, since as a substring it would blank
unrelated words. A column whose whole value was the person's becomes NULL where it may."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from sqlalchemy import JSON, Column, ColumnElement, String, Table, Text, cast, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from app.db import Base
from app.records import content_hash

ERASED = "[erased]"
# Tables whose rows are the erasure's own bookkeeping (its audit row must not be scrubbed).
SKIPPED = frozenset({"erasures"})


@dataclass(frozen=True, slots=True)
class Needles:
    """What to look for: `anywhere` (substrings, any case) and `whole` (whole values, exact)."""

    anywhere: frozenset[str] = field(default_factory=frozenset)
    whole: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls,
        *,
        emails: Iterable[str] = (),
        names: Iterable[str] = (),
        phones: Iterable[str] = (),
        region: str = "GB",
    ) -> Needles:
        anywhere: set[str] = {e.strip().lower() for e in emails if e and e.strip()}
        whole: set[str] = set()
        for name in names:
            name = " ".join((name or "").split())
            if not name:
                continue
            if " " in name:
                anywhere.add(name.lower())
            whole |= {part for part in name.split(" ") if len(part) >= 3}
            if " " not in name and len(name) >= 3:
                whole.add(name)
        for phone in phones:
            anywhere |= phone_forms(phone, region)
        return cls(frozenset(anywhere), frozenset(whole))

    def __bool__(self) -> bool:
        return bool(self.anywhere or self.whole)

    @property
    def _pattern(self) -> re.Pattern[str]:
        alternatives = sorted(self.anywhere, key=len, reverse=True)
        return re.compile("|".join(re.escape(a) for a in alternatives), re.IGNORECASE)

    def scrub(self, value: Any) -> Any:
        """`value` (text, or JSON: dicts, lists, scalars) with every occurrence blanked."""
        if isinstance(value, str):
            if value in self.whole or value.strip().lower() in self.anywhere:
                return ERASED
            return self._pattern.sub(ERASED, value) if self.anywhere else value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value

    def whole_value(self, value: Any) -> bool:
        return isinstance(value, str) and (
            value in self.whole or value.strip().lower() in self.anywhere
        )


def phone_forms(phone: str, region: str) -> set[str]:
    """The ways a number is written in what we store: E.164, national, national digits."""
    forms = {phone.strip()} if phone and phone.strip() else set()
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return forms
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms |= {
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        national,
        re.sub(r"\D", "", national),
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    }
    return {f for f in forms if len(re.sub(r"\D", "", f)) >= 6}


def _texty(type_: TypeEngine[Any]) -> str | None:
    """'text' or 'json' for the column types that can hold a person's data, else None."""
    impl = getattr(type_, "impl", type_)
    if isinstance(type_, JSON) or isinstance(impl, JSON):
        return "json"
    if isinstance(type_, String | Text) and not getattr(type_, "enums", None):
        return "text"
    return None


def scanned_columns() -> list[tuple[Table, list[tuple[Column[Any], str]]]]:
    """Every table in the metadata with its text and JSON columns (`erasures` left out)."""
    found = []
    for table in Base.metadata.sorted_tables:
        if table.name in SKIPPED:
            continue
        columns = [(c, kind) for c in table.columns if (kind := _texty(c.type))]
        if columns:
            found.append((table, columns))
    return found


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(column: Column[Any], kind: str, needles: Needles) -> ColumnElement[bool]:
    as_text = cast(column, Text) if kind == "json" else column
    terms: list[ColumnElement[bool]] = [
        as_text.ilike(_like(n), escape="\\") for n in needles.anywhere
    ]
    # A name part is a whole value: the column itself, or a quoted string inside JSON.
    if kind == "json":
        terms += [as_text.like(_like(f'"{w}"'), escape="\\") for w in needles.whole]
    else:
        terms += [column == w for w in needles.whole]
    return or_(*terms)


async def scrub_everywhere(session: AsyncSession, needles: Needles) -> dict[str, int]:
    """Blank every occurrence in every table; returns rows changed per table (only those with
    any). A record's snapshot scrubbed here gets its content hash again."""
    counts: dict[str, int] = {}
    if not needles:
        return counts
    for table, columns in scanned_columns():
        key = list(table.primary_key.columns)
        wanted = or_(*(_matches(c, kind, needles) for c, kind in columns))
        rows = (await session.execute(select(*key, *(c for c, _ in columns)).where(wanted))).all()
        changed = 0
        for row in rows:
            ident, values = row[: len(key)], row[len(key) :]
            new: dict[str, Any] = {}
            for (column, kind), value in zip(columns, values, strict=True):
                if value is None:
                    continue
                if kind == "text" and needles.whole_value(value) and column.nullable:
                    new[column.key] = None
                    continue
                scrubbed = needles.scrub(value)
                if scrubbed != value:
                    new[column.key] = scrubbed[: _length(column)] if _length(column) else scrubbed
            if not new:
                continue
            if table.name == "records" and "data" in new:
                new["content_hash"] = content_hash(new["data"])
            where = [k == v for k, v in zip(key, ident, strict=True)]
            await session.execute(update(table).where(*where).values(**new))
            changed += 1
        if changed:
            counts[table.name] = changed
    return counts


def _length(column: Column[Any]) -> int | None:
    """A String column's limit (a scrubbed value is never longer; `[erased]` fits in 8)."""
    return column.type.length if isinstance(column.type, String) else None
