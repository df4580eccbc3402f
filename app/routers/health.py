"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.deps import ServicesDep
from app.migrate import head_revision
from app.routers.body import JsonBodyRoute

router = APIRouter(tags=["health"], route_class=JsonBodyRoute)
routers = [router]
RETRY_AFTER = "5"  # seconds a load balancer should wait before asking again


class Liveness(BaseModel):
    status: str = Field("ok", examples=["ok"])


class Readiness(BaseModel):
    ready: bool
    database: str = Field(description="ok, or unavailable: <why>")
    migrations: str | None = Field(description="the database's Alembic revision")
    head: str | None = Field(None, description="the revision this code needs")


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> Liveness:
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the database is reachable and migrated to head",
    responses={503: {"description": "not ready (with Retry-After)", "model": Readiness}},
)
async def readyz(services: ServicesDep, response: Response) -> Readiness:
    head = head_revision()
    try:
        async with services.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # not reachable, or never migrated
        response.status_code = 503
        response.headers["Retry-After"] = RETRY_AFTER
        return Readiness(
            ready=False, database=f"unavailable: {type(exc).__name__}", migrations=None, head=head
        )
    ready = current == head
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = RETRY_AFTER
    return Readiness(ready=ready, database="ok", migrations=current, head=head)
