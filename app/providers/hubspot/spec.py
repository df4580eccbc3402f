"""HubSpot's official OpenAPI files (specs/hubspot/): find the operation a request calls and
check its JSON body against the operation's request schema."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator

SPEC_DIR = Path(__file__).resolve().parents[3] / "specs" / "hubspot"


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity, for the validator cache
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    body_schema: dict[str, Any] | None
    spec: dict[str, Any]


class SpecError(ValueError):
    """A request that HubSpot's spec does not describe or does not accept."""


@cache
def operations() -> tuple[Operation, ...]:
    found: list[Operation] = []
    for path in sorted(SPEC_DIR.glob("*.json")):
        spec = json.loads(path.read_text())
        for template, item in spec.get("paths", {}).items():
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template)) + "$"
            for method, operation in item.items():
                body = operation.get("requestBody", {}).get("content", {})
                schema = body.get("application/json", {}).get("schema")
                found.append(Operation(method.upper(), template, re.compile(regex), schema, spec))
    # Literal paths before templated ones, so /objects/contacts/batch/read wins over
    # a template that would also match it.
    found.sort(key=lambda op: op.template.count("{"))
    return tuple(found)


def find(method: str, path: str) -> Operation | None:
    for op in operations():
        if op.method == method.upper() and op.pattern.match(path):
            return op
    return None


@cache
def _validator(op: Operation) -> Any:
    return OAS30Validator({**(op.body_schema or {}), "components": op.spec.get("components", {})})


def errors(method: str, path: str, body: Any) -> list[str]:
    """What is wrong with this request body by HubSpot's spec ([] when it conforms)."""
    op = find(method, path)
    if op is None:
        return [f"{method} {path} is not an operation in specs/hubspot"]
    if op.body_schema is None:
        return [] if body is None else [f"{method} {path} takes no body"]
    validator = _validator(op)
    found: list[ValidationError] = sorted(validator.iter_errors(body), key=lambda e: e.path)
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message}" for e in found]


def check(method: str, path: str, body: Any) -> None:
    problems = errors(method, path, body)
    if problems:
        raise SpecError("; ".join(problems))
