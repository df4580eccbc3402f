"""Servers the benchmarks measure, one uvicorn process each: `python -m bench.server ROLE PORT`.

- crm-sync: the real app (create_app(Settings())), configured by the environment. Its mock
  provider stands in for a remote CRM, so what the mock "stores" is dropped instead of kept in
  this process (a remote CRM's memory is not ours); deliveries, ids, created/updated answers
  and call counts are the mock's own.
- bare: a bare FastAPI endpoint doing one INSERT on the same database with the same engine
  settings: the floor the accept path is compared with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.db import make_engine
from app.providers.base import Action, Delivery, Outcome
from app.providers.mock import MockProvider
from app.providers.registry import FACTORIES
from app.records import Kind
from app.settings import Settings


class RemoteMock(MockProvider):
    """The mock, minus its in-memory copy of everything delivered."""

    async def deliver(self, kind: Kind, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes = await super().deliver(kind, deliveries)
        self.store.clear()
        # Without the copy, "had it before" is "we knew its CRM id": an update, else a create.
        for delivery, outcome in zip(deliveries, outcomes, strict=True):
            if outcome.ok and delivery.crm_id is not None and kind is not Kind.note:
                outcome.action = Action.update
        return outcomes


def crm_sync_app() -> FastAPI:
    from app.main import create_app

    FACTORIES["mock"] = lambda ctx: RemoteMock(ctx.settings.mock)
    return create_app(Settings())


def bare_app() -> FastAPI:
    settings = Settings()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS bench_bare "
                    "(id BIGSERIAL PRIMARY KEY, data JSONB NOT NULL, created_at TIMESTAMPTZ)"
                )
            )
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare")
    async def bare(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        async with engine.begin() as conn:
            new_id = await conn.scalar(
                text(
                    "INSERT INTO bench_bare (data, created_at) "
                    "VALUES (CAST(:data AS JSONB), now()) RETURNING id"
                ),
                {"data": json.dumps(body)},
            )
        return JSONResponse({"success": True, "id": new_id}, 202)

    return app


def main(argv: list[str]) -> None:
    role, port = argv[0], int(argv[1])
    app = crm_sync_app() if role == "crm-sync" else bare_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
