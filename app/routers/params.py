"""Query and path parameter types bounded by what the database can hold: text without NUL
(PostgreSQL refuses it) and at most a column's length, ids and cursors within BIGINT. A route
that takes text or an id from the URL uses one of these, so the 422 names the parameter instead
of the database failing with a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

from app.inputs import MAX_ID, storable_text

# Text as most columns hold it (ids, names, emails: VARCHAR(255) at most).
Text = Annotated[str, Field(max_length=255), AfterValidator(storable_text)]
# Free text searched for (LIKE patterns): shorter, since each is scanned.
Search = Annotated[str, Field(max_length=200), AfterValidator(storable_text)]
PathText = Annotated[str, Path(max_length=255), AfterValidator(storable_text)]
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="our row id")]
Cursor = Annotated[int, Query(ge=1, le=MAX_ID, description="nextCursor of the previous page")]
PageLimit = Annotated[int, Query(ge=1, le=500, description="items per page")]
