"""GET /metrics: Prometheus exposition, the queue gauges read from the database on each scrape."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from app import metrics
from app.deps import ServicesDep
from app.runtime import LogThrottle

router = APIRouter(tags=["health"])
routers = [router]
log = logging.getLogger(__name__)
_quiet = LogThrottle(60.0)  # a database outage: one line a minute, not one a scrape


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,  # documented as text/plain; sent with its version
    responses={200: {"description": "the Prometheus text exposition format"}},
)
async def prometheus(services: ServicesDep) -> Response:
    try:
        async with services.sessions() as session:
            await metrics.read_queue(session, services.settings.providers)
    except Exception as exc:  # the database is down: still answer what this process counted
        _quiet.exception(log, "queue metrics unavailable", exc)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
