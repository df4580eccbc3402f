"""Times as the API writes them: ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """`2026-11-30T09:43:08.123456Z` for an aware datetime (converted to UTC); None stays None.

    Raises ValueError for a naive datetime: every time this service keeps is aware."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given; use app.db.utcnow()")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
