"""The dashboard's plumbing: templates, the route class that puts security headers and the session
cookie on every answer and turns errors into pages, and the sign-in and CSRF dependencies."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from app.deps import ServicesDep
from app.errors import AppError, validation_errors
from app.settings import AppEnv, Settings
from app.ui.session import COOKIE, SessionSigner, UiSession, session_secret

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
CSP_REPORT_PATH = "/ui/csp-report"
# Only this origin, for everything; no inline script or style; reports come back to us.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        f"report-uri {CSP_REPORT_PATH}",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
NAV = [
    ("overview", "Overview", "/ui/"),
    ("records", "Records", "/ui/records"),
    ("failures", "Failures", "/ui/failures"),
    ("logs", "Sync log", "/ui/logs"),
    ("bulk", "Bulk runs", "/ui/bulk"),
    ("webhooks", "Webhooks", "/ui/webhooks"),
    ("leads", "Leads", "/ui/leads"),
]


SERVED = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _fingerprints() -> dict[str, str]:
    """Static files by path under static/, each with a digest for cache-busting URLs."""
    return {
        path.relative_to(STATIC).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in SERVED
    }


STATIC_FILES = _fingerprints()


def static_url(name: str) -> str:
    """`/ui/static/<name>?v=<digest>`: served with a long cache life, renamed by content."""
    return f"/ui/static/{name}?v={STATIC_FILES[name]}"


def _when(value: str | datetime | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if not seconds:
        return "0 s"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _query(base: str, **params: Any) -> str:
    """A URL with the given non-empty query parameters."""
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    return f"{base}?{urlencode(kept)}" if kept else base


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals |= {"static": static_url, "nav": NAV, "query": _query}
templates.env.filters |= {"when": _when, "age": _age, "pretty": _pretty}


# -- state, sessions, sign-in -----------------------------------------------------------------


class UiState:
    """What the dashboard keeps per app: the session signer (made from settings once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signer = SessionSigner(session_secret(settings), settings.ui.session_hours * 3600)

    @property
    def auth_off(self) -> bool:
        return not self.settings.keys


def ui_state(request: Request) -> UiState:
    state: UiState | None = getattr(request.app.state, "ui", None)
    if state is None:
        state = UiState(request.app.state.services.settings)
        request.app.state.ui = state
    return state


class SignInNeeded(Exception):
    """No valid signed-in session: go to the sign-in page (and come back afterwards)."""


class CsrfRefused(AppError):
    status_code = 403


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is using the dashboard: the ops key's name ("development" with auth off)."""

    name: str
    session: UiSession
    csrf: str


def browser_session(request: Request) -> UiSession:
    """The request's session, or a new anonymous one that the answer will set as a cookie."""
    ui = ui_state(request)
    session = ui.signer.loads(request.cookies.get(COOKIE))
    if session is None:
        session = UiSession.anonymous()
        request.state.ui_set_session = session
    return session


async def operator(request: Request, services: ServicesDep) -> Operator:
    """A dependency: the signed-in operator, or SignInNeeded."""
    ui = ui_state(request)
    session = browser_session(request)
    if ui.auth_off:
        return Operator("development", session, ui.signer.csrf_token(session))
    if session.signed_in and ui.signer.still_valid(session, services.settings.keys):
        request.state.api_key = session.key_name
        return Operator(session.key_name or "", session, ui.signer.csrf_token(session))
    raise SignInNeeded()


OperatorDep = Annotated[Operator, Depends(operator)]


async def csrf_token_of(request: Request) -> str | None:
    """The token a POST carries: the X-CSRF-Token header (htmx) or the `csrf` form field."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf")
        return value if isinstance(value, str) else None
    return None


async def checked(request: Request, who: OperatorDep) -> Operator:
    """A dependency for every POST: the signed-in operator, whose POST carries their token."""
    if not ui_state(request).signer.csrf_ok(who.session, await csrf_token_of(request)):
        raise CsrfRefused("CSRF token missing or wrong: reload the page and try again")
    return who


CheckedDep = Annotated[Operator, Depends(checked)]


# -- answers ----------------------------------------------------------------------------------


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    who: Operator | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    ui = ui_state(request)
    base: dict[str, Any] = {
        "who": who,
        "csrf": who.csrf if who else None,
        "auth_off": ui.auth_off,
        "providers": ui.settings.providers,
    }
    return templates.TemplateResponse(
        request, template, base | context, status_code=status_code, headers=headers
    )


def _error_page(request: Request, status: int, message: str, details: Any = None) -> Response:
    session = browser_session(request)
    ui = ui_state(request)
    who = None
    if ui.auth_off or (session.signed_in and ui.signer.still_valid(session, ui.settings.keys)):
        who = Operator(session.key_name or "development", session, ui.signer.csrf_token(session))
    template = "_error.html" if is_htmx(request) else "error.html"
    context = {"status": status, "message": message, "details": details}
    return render(request, template, context, who=who, status_code=status)


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = f"/ui/login?next={quote(target, safe='')}"
    if is_htmx(request):  # a fragment cannot become the sign-in page: send the whole tab
        return Response(status_code=401, headers={"HX-Redirect": login})
    return RedirectResponse(login, status_code=303)


def cookie_secure(request: Request, settings: Settings) -> bool:
    if settings.ui.cookie_secure is not None:
        return settings.ui.cookie_secure
    return settings.app_env is AppEnv.production or request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, session: UiSession) -> None:
    ui = ui_state(request)
    response.set_cookie(
        COOKIE,
        ui.signer.dumps(session),
        max_age=int(ui.signer.max_age),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request, ui.settings),
    )


class UiRoute(APIRoute):
    """Every dashboard answer: errors as pages (never the API's JSON), security headers, no
    caching of pages, and the session cookie when one was made or changed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInNeeded:
                response = _sign_in_redirect(request)
            except AppError as exc:
                response = _error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                errors = validation_errors(list(exc.errors()))
                first = errors[0] if errors else {"field": "input", "message": "invalid"}
                message = f"{first['field']}: {first['message']}"
                response = _error_page(request, 422, message)
            except HTTPException as exc:
                response = _error_page(request, exc.status_code, str(exc.detail))
            new_session = getattr(request.state, "ui_set_session", None)
            if new_session is not None:
                set_session_cookie(request, response, new_session)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return answer
