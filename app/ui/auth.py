"""Signing in to the dashboard with an ops API key, and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.deps import ServicesDep, find_key
from app.ui.session import COOKIE
from app.ui.web import CheckedDep, CsrfRefused, UiRoute, browser_session, render, ui_state

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Back to a dashboard page only: never to another site (`//evil`, `/\\evil`)."""
    if target and target.startswith("/ui") and not target.startswith(("//", "/\\")):
        return target
    return "/ui/"


def _login_page(
    request: Request, next_url: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    session = browser_session(request)
    context = {
        "login_csrf": ui_state(request).signer.csrf_token(session),
        "next": _safe_next(next_url),
        "error": error,
    }
    return render(request, "login.html", context, status_code=status_code)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    ui = ui_state(request)
    if ui.auth_off:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next or "/ui/")


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    key: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/ui/",
) -> Response:
    """An ops key signs in (303 to `next`); a sync key is refused (403) and any other (401)."""
    ui = ui_state(request)
    session = ui.signer.loads(request.cookies.get(COOKIE))
    if not ui.signer.csrf_ok(session, csrf):
        raise CsrfRefused("CSRF token missing or wrong: reload the sign-in page and try again")
    assert session is not None  # csrf_ok() is False without one
    if ui.auth_off:
        return RedirectResponse(_safe_next(next), status_code=303)
    found = find_key(services.settings, key.strip()) if key.strip() else None
    if found is None:
        return _login_page(request, next, error="That key is not valid.", status_code=401)
    if found.scope != "ops":
        error = f"The key {found.name!r} has scope {found.scope!r}: the dashboard needs an ops key."
        return _login_page(request, next, error=error, status_code=403)
    request.state.ui_set_session = session.signed_in_as(found.name, ui.signer.fingerprint(found))
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, who: CheckedDep) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
