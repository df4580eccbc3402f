"""The dashboard's own files (CSS, JavaScript, the vendored htmx) and the sink for the browser's
Content-Security-Policy violation reports."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from prometheus_client import Counter

from app.errors import NotFound
from app.ui.web import SERVED, STATIC, STATIC_FILES, UiRoute

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)

CSP_REPORTS = Counter(
    "crm_sync_ui_csp_reports",
    "Content-Security-Policy violations browsers reported from the dashboard, by directive.",
    ["directive"],
)
REPORT_LIMIT = 16 * 1024  # bytes of a report read; a real one is well under
# The label takes only directive names (anyone may post here: no unbounded label values).
DIRECTIVES = frozenset(
    {
        "default-src",
        "script-src",
        "script-src-elem",
        "script-src-attr",
        "style-src",
        "style-src-elem",
        "style-src-attr",
        "img-src",
        "font-src",
        "connect-src",
        "media-src",
        "object-src",
        "frame-src",
        "child-src",
        "worker-src",
        "manifest-src",
        "form-action",
        "frame-ancestors",
        "base-uri",
    }
)


@router.get("/static/{name:path}")
async def static_file(name: str) -> Response:
    """Only the files that were there at start-up (no path walking); named by content in the
    pages (`?v=`), so they may be cached for a year."""
    if name not in STATIC_FILES:
        raise NotFound(f"no such file: {name}")
    path = STATIC / name
    return FileResponse(
        path,
        media_type=SERVED[path.suffix],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


@router.post("/csp-report", status_code=204)
async def csp_report(request: Request) -> Response:
    """Browsers POST here (`report-uri`) when a page tried to load something the policy refused.
    Sent by the browser itself, so it carries no CSRF token; it changes nothing but a counter
    and a log line."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > REPORT_LIMIT:
            break
    try:
        report = json.loads(raw[:REPORT_LIMIT]).get("csp-report", {})
    except (ValueError, AttributeError):
        report = {}
    if not isinstance(report, dict):
        report = {}
    directive = str(report.get("effective-directive") or report.get("violated-directive") or "?")
    directive = directive.split(" ", 1)[0]
    if directive not in DIRECTIVES:
        directive = "other"
    CSP_REPORTS.labels(directive).inc()
    log.warning(
        "CSP violation on %s: %s blocked %s",
        str(report.get("document-uri", "?"))[:200],
        directive,
        str(report.get("blocked-uri", "?"))[:200],
    )
    return Response(status_code=204)
