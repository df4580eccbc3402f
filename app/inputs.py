"""What input from outside may hold: JSON read strictly, and text, numbers and nesting bounded by
what the database and the CRMs can store, so bad input is refused where it enters (a 4xx naming
the field) instead of failing later as a database error.

Used by every reader of a body or a parameter: the routes' body dependency, the batch endpoint,
the Stripe and HubSpot webhook readers, and the record models (as a backstop)."""

from __future__ import annotations

import json
import math
from typing import Any

from app.errors import AppError

MAX_DEPTH = 32  # levels of objects and arrays in any body; real payloads use under ten
MAX_ID = 2**63 - 1  # BIGINT, the widest integer column: a larger id is a database error
MAX_INT32 = 2**31 - 1  # INTEGER columns (bedrooms, guests, counts in the internal CRM)
NUL = "text must not contain NUL characters"
SURROGATE = "text must be valid Unicode (a lone surrogate such as \\ud800 is not)"
NOT_FINITE = "numbers must be finite"
DUPLICATE = "field appears more than once in its object (which one counts would be a guess)"


NOT_JSON = "not valid JSON"


class _Repeated(dict[str, Any]):
    """A JSON object in which some name appears more than once (RFC 8259 section 4: names
    SHOULD be unique, and parsers disagree on which value wins). It holds the last value of
    each, as json.loads would, and `repeated` names the duplicates, for `problem()` to refuse
    with the field's full path. https://www.rfc-editor.org/rfc/rfc8259#section-4"""

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    repeated = _Repeated(found)
    repeated.repeated = []
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            repeated.repeated.append(key)
        seen.add(key)
    return repeated


class UnreadableJson(AppError):
    """A body that is not JSON we can read at all: 400 naming `field` (`body`). `reason` is
    NOT_JSON, "not UTF-8 text" or that it is nested too deep to read."""

    status_code = 400

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field)
        self.reason = reason


def loads(raw: bytes | str, *, field: str = "body") -> Any:
    """The JSON value of `raw`: UTF-8 only, nesting no deeper than the parser can read. Raises
    UnreadableJson (400). NaN, Infinity and 1e400 (read as inf), and an object naming a field
    twice, are let through to be refused by `problem()`, which names their field, like any
    other value no store can hold."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UnreadableJson(field, "not UTF-8 text") from None
    try:
        return json.loads(text, object_pairs_hook=_object)
    except RecursionError:
        raise UnreadableJson(
            field, f"nested too deep to read (at most {MAX_DEPTH} levels are taken)"
        ) from None
    except ValueError:  # JSONDecodeError, or an integer of over 4,300 digits
        raise UnreadableJson(field, NOT_JSON) from None


def text_problem(value: str) -> str | None:
    """Why this text cannot be stored (PostgreSQL refuses NUL; no encoder takes a lone
    surrogate), or None."""
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE
    return None


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def problem(value: Any, *, path: str = "", max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """The first value inside `value` that no store can hold, as (field path, reason), or None.

    The path is written as validation errors name fields: `customFields.note`, `[3].email`, or
    `path` itself (default: empty, read as `body`). Checks text (NUL, lone surrogates, in keys
    too), numbers (finite), nesting (at most `max_depth` levels below `value`) and names given
    twice in one object (as read by `loads()`). Iterative, so no input can exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if reason := text_problem(item):
                return where or "body", reason
        elif isinstance(item, float):
            if not math.isfinite(item):
                return where or "body", NOT_FINITE
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return where or "body", f"nested more than {max_depth} levels deep"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            children = []
            for key, child in pairs:
                if isinstance(key, str) and (reason := text_problem(key)):
                    shown = key.encode("utf-8", "backslashreplace").decode().replace("\x00", "")
                    return _join(where, shown) or "body", f"field name: {reason}"
                children.append((child, _join(where, key), depth + 1))
            if isinstance(item, _Repeated):
                return _join(where, item.repeated[0]), DUPLICATE
            stack.extend(reversed(children))  # report the first offender in document order
    return None


def storable_text(value: str) -> str:
    """For pydantic models and parameters (AfterValidator): a 422 naming the field."""
    if reason := text_problem(value):
        raise ValueError(reason)
    return value
