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
from starlette.routing import Match

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


class ErrorResponse(JSONResponse):
    """An error answer. Rendered so that any text echoed from the request (a lone surrogate in
    a name, say) comes out escaped instead of failing to encode into a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first
    route's): GET, HEAD, POST for a path with a GET route and a POST route."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        # A method no route serves: a route at this path then matches partly, never fully.
        match, _ = route.matches({**request.scope, "method": "ALLOW-PROBE"})
        if match is Match.PARTIAL:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


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


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        body = jsonable_encoder(error_body(exc.message, **exc.extra))
        return ErrorResponse(body, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in raw):
            return ErrorResponse(error_body("body: not valid JSON", field="body"), 400)
        errors = validation_errors(raw)
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        return ErrorResponse(
            jsonable_encoder(error_body(message, field=first["field"], errors=errors)), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        headers = dict(exc.headers or {})
        extra: dict[str, Any] = {}
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        elif exc.status_code == 413:
            limit = request.scope.get("starlette.max_body_size")
            if isinstance(limit, int):  # Starlette's body limit, not a route's own 413
                detail = f"body: larger than the {limit:,}-byte limit (MAX_BODY_SIZE)"
                extra = {"field": "body", "limit": limit}
        return ErrorResponse(error_body(detail, **extra), exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ErrorResponse(error_body("internal error"), 500)
