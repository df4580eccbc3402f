"""The error answers routes give, for the OpenAPI document: one shape for every error (the
contract's `{"success": false, "error": ..., "field": ...}`), listed per route by status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str
    message: str


class ErrorAnswer(BaseModel):
    """Every error: what went wrong, and for bad input the field it was in."""

    success: bool = Field(False, examples=[False])
    error: str = Field(examples=["email: value is not a valid email address"])
    field: str | None = Field(None, description="the field at fault (bad input)")
    errors: list[FieldError] | None = Field(None, description="every field at fault (422)")
    limit: int | None = Field(None, description="the limit passed (413)")
    retryAfter: int | None = Field(None, description="seconds to wait before retrying (503)")


_WHY = {
    400: "unreadable input (not JSON, or a webhook that cannot be trusted or read)",
    401: "no API key, or an unknown one",
    403: "an API key whose scope does not allow this",
    404: "not found",
    409: "a conflict with the current state",
    413: "the body is larger than MAX_BODY_SIZE (or a batch over 1,000 records)",
    422: "a field is missing or malformed; `field` names it",
    502: "a CRM refused or failed the call",
    503: "the database is unreachable; retry after `Retry-After` seconds",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these error statuses, each with ErrorAnswer as its body."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"description": _WHY[code], "model": ErrorAnswer}
        if code == 503:
            out[code]["headers"] = RETRY_AFTER
    return out


# Every route: bad input, the database away.
COMMON = errors(422, 503)
# Routes taking an API key, and routes reading a body.
AUTHED = errors(401, 403)
BODY = errors(400, 413)
