"""GET /metrics: Prometheus exposition, the queue gauges read from the database on each scrape."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from app import metrics
from app.deps import ServicesDep

router = APIRouter(tags=["health"])
routers = [router]
log = logging.getLogger(__name__)


@router.get("/metrics", summary="Prometheus metrics")
async def prometheus(services: ServicesDep) -> Response:
    try:
        async with services.sessions() as session:
            await metrics.read_queue(session, services.settings.providers)
    except Exception:  # the database is down: still answer what this process counted
        log.exception("queue metrics unavailable")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
