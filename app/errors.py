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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class ErrorResponse(JSONResponse):
    """An error answer. Rendered so that any text echoed from the request (a lone surrogate in
    a name, say) comes out escaped instead of failing to encode into a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


class BodyTooLarge(AppError):
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"body: larger than the {limit:,}-byte limit (MAX_BODY_SIZE)", field="body", limit=limit
        )


class BodyLimit:
    """MAX_BODY_SIZE: a request whose Content-Length is over it is answered 413 before a byte
    is read; one without a length is cut off with a 413 as soon as what arrived passes it, so
    nothing of it is ever parsed or stored. (FastAPI's own `max_body_size` answers the first
    case in plain text, outside the contract's error shape.)"""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit() and int(length) > self.limit:
            exc = BodyTooLarge(self.limit)
            await ErrorResponse(error_body(exc.message, **exc.extra), 413)(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)  # answered by the AppError handler
            return message

        await self.app(scope, receive_within_limit, send)


class UncodedBodiesOnly:
    """A request with a Content-Encoding other than `identity` (gzip, br, ...) is answered 415
    naming the header, with `Accept-Encoding: identity`, before a byte of it is read: bodies are
    read as sent, so a compressed one would fail as "not UTF-8", and a plain one labelled gzip
    would be taken despite its label. RFC 9110 section 15.5.16:
    https://www.rfc-editor.org/rfc/rfc9110#section-15.5.16"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            codings = [
                coding.strip().lower()
                for name, value in scope["headers"]
                if name == b"content-encoding"
                for coding in value.decode("latin-1").split(",")
            ]
            # The coding is not echoed: a header's text is the caller's, never ours to repeat.
            if any(c not in ("", "identity") for c in codings):
                message = "Content-Encoding: only identity is taken; send the body uncompressed"
                answer = ErrorResponse(
                    error_body(message, field="Content-Encoding"),
                    415,
                    headers={"Accept-Encoding": "identity"},
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first
    route's): GET, HEAD, POST for a path with a GET route and a POST route. HEAD is served
    wherever GET is (app.routers.head)."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": "GET" if method == "HEAD" else method})[0]
            is Match.FULL
            for route in request.app.router.routes
        )
    ]


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
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return ErrorResponse(error_body(scrub.text(detail)), exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ErrorResponse(error_body("internal error"), 500)
