"""Domain errors carry their HTTP status; every error answers `{"success": false, "error": ...}`."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.redaction import Redactor

log = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class InvalidInput(AppError):
    status_code = 422

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **extra)


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": message, **extra}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "userId") -> "userId"; ("body", 3, "email") -> "[3].email"; ("query", "userId").
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    return [
        {"field": _field_name(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in errors
    ]


def install_handlers(app: FastAPI, redactor: Redactor | None = None) -> None:
    """JSON answers for every error; `redactor` blanks configured secrets from them (a CRM's
    refusal may quote one)."""
    scrub = redactor or Redactor(())

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        body = scrub.value(jsonable_encoder(error_body(exc.message, **exc.extra)))
        return JSONResponse(body, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in raw):
            return JSONResponse(error_body("body: not valid JSON"), 400)
        errors = validation_errors(raw)
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(
            jsonable_encoder(error_body(message, field=first["field"], errors=errors)), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse(error_body(scrub.text(detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal error"), 500)
