"""Servers the benchmarks measure, one uvicorn process each: `python -m bench.server ROLE PORT`.

- crm-sync: the real app (create_app(Settings())), configured by the environment. Its mock
  provider stands in for a remote CRM, so what the mock "stores" is dropped instead of kept in
  this process (a remote CRM's memory is not ours); deliveries, ids, created/updated answers
  and call counts are the mock's own.
- bare: a bare FastAPI endpoint validating the same body with the same pydantic model and doing
  one asyncpg INSERT on the same database: the floor the accept path is compared with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.providers.base import Action, Delivery, Outcome
from app.providers.mock import MockProvider
from app.providers.registry import FACTORIES
from app.records import Kind, Owner
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
    """The floor: FastAPI validating the same body with the same model (app.records.Owner),
    then one INSERT through an asyncpg pool, answering 202 with JSON."""
    settings = Settings()
    dsn = settings.database_url.replace("+asyncpg", "")
    pool: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.append(await asyncpg.create_pool(dsn, min_size=10, max_size=10))
        await pool[0].execute(
            "CREATE TABLE IF NOT EXISTS bench_bare "
            "(id BIGSERIAL PRIMARY KEY, data JSONB NOT NULL, created_at TIMESTAMPTZ)"
        )
        yield
        await pool[0].close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare", status_code=202)
    async def bare(owner: Owner) -> JSONResponse:
        data = owner.model_dump(mode="json", exclude_unset=True)
        new_id = await pool[0].fetchval(
            "INSERT INTO bench_bare (data, created_at) VALUES ($1::jsonb, now()) RETURNING id",
            json.dumps(data),
        )
        return JSONResponse({"success": True, "id": new_id}, 202)

    return app


def main(argv: list[str]) -> None:
    role, port = argv[0], int(argv[1])
    app = crm_sync_app() if role == "crm-sync" else bare_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
