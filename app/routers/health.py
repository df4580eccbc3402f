"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.deps import ServicesDep
from app.migrate import head_revision

router = APIRouter(tags=["health"])
routers = [router]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    head = head_revision()
    try:
        async with services.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # not reachable, or never migrated
        return JSONResponse(
            {"ready": False, "database": f"unavailable: {type(exc).__name__}", "migrations": None},
            503,
        )
    ready = current == head
    return JSONResponse(
        {"ready": ready, "database": "ok", "migrations": current, "head": head},
        200 if ready else 503,
    )
