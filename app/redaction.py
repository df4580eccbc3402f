"""Secrets blanked by value: every configured secret (API keys, tokens, webhook secrets) is
replaced with `[redacted]` in whatever this service stores, logs or answers, even where a CRM
echoes it back in a body we keep. Installed where every writer passes: the database engine (each
statement's parameters), the log handler's formatter, and the error answers."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MASK = "[redacted]"
MIN_LENGTH = 6  # shorter values would blank ordinary words; no real credential is this short


class Redactor:
    """Replaces each of `secrets` (longest first) wherever it occurs in a text or a JSON-like
    value."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def value(self, value: Any) -> Any:
        """`value` with secrets blanked in every string inside it (dict keys too)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value


def secret_values(settings: BaseModel) -> list[str]:
    """Every SecretStr in the settings, nested groups included, and each API key's key."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found += secret_values(value)
    for key in getattr(settings, "keys", []) or []:
        found.append(key.key)
    for part in found[:]:  # a key given as name:scope:key is also known by its parts
        found += [p for p in part.split(",") if p]
    return [s.strip() for s in found if s and s.strip()]


def guard_engine(engine: AsyncEngine, redactor: Redactor) -> None:
    """Blank secrets in the parameters of every statement the engine runs: one place that every
    write of this process passes through (JSON values arrive here already serialised). A caller
    that hands a statement to the driver itself scrubs its parameters with `scrub_parameters`."""
    _REDACTORS[engine.sync_engine] = redactor
    if not redactor:
        return

    @event.listens_for(engine.sync_engine, "before_cursor_execute", retval=True)
    def _scrub(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        if many and isinstance(parameters, list):
            return statement, [_params(p, redactor) for p in parameters]
        return statement, _params(parameters, redactor)


def scrub_parameters(engine: AsyncEngine, parameters: list[Any]) -> list[Any]:
    """`parameters` with secrets blanked, as guard_engine does for statements SQLAlchemy runs."""
    redactor = _REDACTORS.get(engine.sync_engine)
    return _params(parameters, redactor) if redactor else parameters


_REDACTORS: weakref.WeakKeyDictionary[Any, Redactor] = weakref.WeakKeyDictionary()


def _params(parameters: Any, redactor: Redactor) -> Any:
    if isinstance(parameters, dict):
        return {k: _param(v, redactor) for k, v in parameters.items()}
    if isinstance(parameters, list | tuple):
        return type(parameters)(_param(v, redactor) for v in parameters)
    return parameters


def _param(value: Any, redactor: Redactor) -> Any:
    """One parameter: a text, or an array of them (a batch bound one array per column)."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, list):
        return [redactor.text(v) if isinstance(v, str) else v for v in value]
    return value


class RedactingFormatter(logging.Formatter):
    """Formats with `inner`, then blanks secrets in the whole line (tracebacks included)."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.text(self.inner.format(record))
