"""GET /metrics: Prometheus exposition, the queue gauges read from the database on each scrape."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from app import metrics
from app.deps import ServicesDep
from app.runtime import LogThrottle

router = APIRouter(tags=["health"])
routers = [router]
log = logging.getLogger(__name__)
_quiet = LogThrottle(60.0)  # a database outage: one line a minute, not one a scrape


class PrometheusText(Response):
    media_type = CONTENT_TYPE_LATEST


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PrometheusText,
    responses={
        200: {
            "description": "the Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus(services: ServicesDep) -> Response:
    try:
        async with services.sessions() as session:
            await metrics.read_queue(session, services.settings.providers)
    except Exception as exc:  # the database is down: still answer what this process counted
        _quiet.exception(log, "queue metrics unavailable", exc)
    return PrometheusText(generate_latest(REGISTRY))
